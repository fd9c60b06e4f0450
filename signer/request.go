package signer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxRequestExpires bounds an expires value as decoded, before any
// signer's cap applies: ten years, far beyond every cap, so the sums in
// the signers cannot overflow.
const maxRequestExpires = 10 * 365 * 24 * time.Hour

// defaultExpires is the validity of a signature whose request gives no
// expires (or the signer's cap, when that is shorter).
const defaultExpires = time.Hour

// Duration is a validity period in a signing request: a JSON string in
// the config's duration syntax ("90s", "15m", "2h", "1d", "1w", "1h30m")
// or a JSON number of seconds (fractions allowed). It is never negative
// and at most ten years. The signers count in whole seconds: a fraction
// is dropped.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return &DecodeError{Field: "expires", Msg: "not a JSON string"}
		}
		v, err := ParseExpires(s)
		if err != nil {
			return &DecodeError{Field: "expires", Msg: err.Error()}
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil || !json.Valid(b) {
		return &DecodeError{Field: "expires", Msg: `want a duration such as "15m" or a number of seconds`}
	}
	if secs < 0 || secs > maxRequestExpires.Seconds() || math.IsNaN(secs) {
		return &DecodeError{Field: "expires", Msg: fmt.Sprintf("%s is not a number of seconds between 0 and %d", b, int64(maxRequestExpires.Seconds()))}
	}
	// A plain decimal ("0.001001") is read exactly, as the string form
	// is; float arithmetic would lose nanoseconds ("0.001001" × 1e9 is
	// 1000999.99…), and MarshalJSON's output would not read back equal.
	if v, err := ParseDuration(string(b) + "s"); err == nil {
		*d = Duration(v)
		return nil
	}
	*d = Duration(time.Duration(secs * float64(time.Second)))
	return nil
}

// MarshalJSON writes d as an exact decimal number of seconds
// ("900", "0.001001"), which UnmarshalJSON reads back to the same value.
func (d Duration) MarshalJSON() ([]byte, error) {
	v := time.Duration(d)
	b := strconv.AppendInt(nil, int64(v/time.Second), 10)
	if ns := int64(v % time.Second); ns != 0 {
		frac := strconv.AppendInt(nil, ns+int64(time.Second), 10)[1:] // nine digits, leading zeros kept
		b = append(append(b, '.'), bytes.TrimRight(frac, "0")...)
	}
	return b, nil
}

// ParseExpires parses an expires value written as text (a JSON string,
// the CLI's --expires): ParseDuration's syntax, at most ten years.
func ParseExpires(s string) (time.Duration, error) {
	v, err := ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if v > maxRequestExpires {
		return 0, &DurationError{Input: s, Reason: "more than ten years"}
	}
	return v, nil
}

// Time is an instant in a signing request: an RFC 3339 JSON string such
// as "2030-01-02T15:04:05Z".
type Time struct{ time.Time }

// UnmarshalJSON parses an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &DecodeError{Field: "not_before", Msg: "want an RFC 3339 time such as \"2030-01-02T15:04:05Z\""}
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return &DecodeError{Field: "not_before", Msg: fmt.Sprintf("%q is not an RFC 3339 time such as \"2030-01-02T15:04:05Z\"", s)}
	}
	t.Time = v
	return nil
}

// MarshalJSON writes t as RFC 3339 in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339))
}

// S3Request asks for a pre-signed S3 URL (POST /v1/sign/s3).
type S3Request struct {
	// Bucket is the S3 bucket name. Required.
	Bucket string `json:"bucket"`
	// Key is the object key. Required.
	Key string `json:"key"`
	// Method is GET (download, the default) or PUT (upload).
	Method string `json:"method,omitempty"`
	// Expires is how long the URL works. Default 1h, at most
	// signer.s3.max_expires.
	Expires *Duration `json:"expires,omitempty"`
	// ContentType is the Content-Type a PUT must be sent with; it is part
	// of the signature. PUT only.
	ContentType string `json:"content_type,omitempty"`
}

// CloudFrontRequest asks for a CloudFront signed URL or signed cookies
// (POST /v1/sign/cloudfront).
type CloudFrontRequest struct {
	// URL is the https (or http) URL on one of signer.cloudfront.domains.
	// For cookies it may hold "*" and "?" wildcards, and then it is the
	// policy's resource. Required.
	URL string `json:"url"`
	// Resource, when set, is the custom policy's resource: a URL pattern
	// with "*" and "?" wildcards that must match URL, such as
	// "https://cdn.example.com/videos/*". Default URL.
	Resource string `json:"resource,omitempty"`
	// Expires is how long the signature works. Default 1h, at most
	// signer.cloudfront.max_expires.
	Expires *Duration `json:"expires,omitempty"`
	// NotBefore, when set, is when the signature starts to work (custom
	// policy DateGreaterThan).
	NotBefore *Time `json:"not_before,omitempty"`
	// IPRange, when set, restricts the viewers to a CIDR prefix, or to
	// one address (custom policy IpAddress).
	IPRange string `json:"ip_range,omitempty"`
	// Cookies asks for signed cookies instead of a signed URL.
	Cookies bool `json:"cookies,omitempty"`
}

// LinkRequest asks for a gateway-signed link (POST /v1/sign/link).
type LinkRequest struct {
	// URL is the URL on a configured host with signed_links, under one of
	// its paths, with its path in canonical form. Its query, if any, is
	// signed as given (unless the host's signed_links.query is ignore).
	// Required.
	URL string `json:"url"`
	// Method is the HTTP method the link is for: GET, HEAD, POST, PUT,
	// PATCH or DELETE. Default GET. The link serves that method only,
	// except that a GET link also serves HEAD (a HEAD link never serves
	// GET).
	Method string `json:"method,omitempty"`
	// Expires is how long the link works. Default 1h, at most the host's
	// signed_links.max_expires.
	Expires *Duration `json:"expires,omitempty"`
	// IP, when set, binds the link to this client address. Required when
	// the host's signed_links.bind_ip is on.
	IP string `json:"ip,omitempty"`
}

// Request is one of the signing request types.
type Request interface {
	S3Request | CloudFrontRequest | LinkRequest
}

// Decode reads one JSON request object from r into a T, a struct with
// json tags (a signing request, or another admin API request). Malformed
// JSON, a second value, a value that is not an object, an unknown field
// (names are matched exactly, not case-insensitively as encoding/json
// would), a field given twice and a value of the wrong type are refused
// with a *DecodeError: its Field names the field at fault, or is "body"
// when the fault is the body as a whole. A read error (such as
// *http.MaxBytesError from the caller's bound) is wrapped in the
// *DecodeError. The caller bounds r.
func Decode[T any](r io.Reader) (T, error) {
	var req T
	dec := json.NewDecoder(r)
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return req, &DecodeError{Field: "body", Msg: "empty body; want a JSON object"}
		}
		return req, &DecodeError{Field: "body", Msg: "invalid JSON: " + err.Error(), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, &DecodeError{Field: "body", Msg: "one JSON object expected, found more after it", Err: err}
	}
	if err := checkFields(raw, jsonFields(reflect.TypeFor[T]())); err != nil {
		return req, err
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		var de *DecodeError
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &de):
			return req, de
		case errors.As(err, &ute):
			return req, &DecodeError{Field: ute.Field, Msg: fmt.Sprintf("want a JSON %s, found %s", jsonKind(ute.Type.Kind().String()), ute.Value)}
		default:
			return req, &DecodeError{Field: "body", Msg: "invalid JSON: " + err.Error(), Err: err}
		}
	}
	return req, nil
}

// checkFields refuses a JSON value that is not an object, and an object
// with a member not in known or given twice (encoding/json would take
// the last, so a log or check reading the first would be deceived).
func checkFields(raw json.RawMessage, known []string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return &DecodeError{Field: "body", Msg: "want a JSON object"}
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return &DecodeError{Field: "body", Msg: "invalid JSON object"}
		}
		switch {
		case !slices.Contains(known, name):
			return &DecodeError{Field: name, Msg: "unknown field; the fields are " + strings.Join(known, ", ")}
		case seen[name]:
			return &DecodeError{Field: name, Msg: "given twice"}
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return &DecodeError{Field: name, Msg: "invalid JSON value"}
		}
	}
	return nil
}

// jsonFields lists the JSON member names of struct type t, in order.
func jsonFields(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// jsonKind names a Go kind the way a JSON user knows it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean (true or false)"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	}
	return "number"
}

// DecodeError is a request body that is not a valid request: malformed
// JSON, an unknown field, a value of the wrong type (HTTP 400). Field
// names the JSON field at fault, "body" when it is the body as a whole.
// Err, when set, is the read or syntax error behind it (an
// *http.MaxBytesError for a body over the caller's bound).
type DecodeError struct {
	Field string
	Msg   string
	Err   error
}

func (e *DecodeError) Unwrap() error { return e.Err }

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// FieldError is a well-formed request that cannot be signed as asked: a
// bad bucket name, an expiry over the cap, a domain not configured
// (HTTP 422). Field names the JSON field at fault.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ErrOutsidePrefixes is wrapped by the *PrefixError of a request for a
// resource outside the token's prefixes (HTTP 403).
var ErrOutsidePrefixes = errors.New("outside the token's prefixes")

// PrefixError is a request for a resource the token may not sign: the
// resource is outside its prefixes (HTTP 403). Field names the JSON field
// that named the resource.
type PrefixError struct {
	Field    string
	Resource string
}

func (e *PrefixError) Error() string {
	return fmt.Sprintf("%s: %q is %v", e.Field, e.Resource, ErrOutsidePrefixes)
}

func (e *PrefixError) Unwrap() error { return ErrOutsidePrefixes }

// Prefixes limits the resources a token may sign (admin.tokens[].prefixes).
// An S3 resource is "BUCKET/KEY"; a URL's is its path without the
// leading "/". A prefix
//   - ending in "/" covers what is under it ("media/" covers "media/a"
//     but not the object "media" itself: an object key is not a folder,
//     and a grant never covers more than it names);
//   - ending in "*" covers any continuation ("media*" covers
//     "media-private/a" too);
//   - otherwise covers itself and what is under it on a segment boundary
//     ("media" covers "media" and "media/a", not "media-private/a"), as
//     the gateway's path prefixes do.
//
// Prefixes are checked with CheckPrefix when the config loads. Nil allows
// everything.
type Prefixes []string

// Allow reports whether resource is allowed. A resource's leading "/" (a
// link's canonical path) is ignored.
func (p Prefixes) Allow(resource string) bool {
	if p == nil {
		return true
	}
	resource = strings.TrimPrefix(resource, "/")
	for _, pre := range p {
		if prefixCovers(pre, resource) {
			return true
		}
	}
	return false
}

// prefixCovers reports whether one prefix covers resource.
func prefixCovers(pre, resource string) bool {
	switch {
	case pre == "":
		return false // refused by CheckPrefix; never "everything"
	case pre[len(pre)-1] == '*':
		return strings.HasPrefix(resource, pre[:len(pre)-1])
	case pre[len(pre)-1] == '/':
		return strings.HasPrefix(resource, pre)
	}
	rest, ok := strings.CutPrefix(resource, pre)
	return ok && (rest == "" || rest[0] == '/')
}

// CheckPrefix reports why p cannot be a token prefix: empty, "/" or "*"
// (each would silently mean everything: omit prefixes for that), a
// leading "/" (resources have none, so it would never match), or a "*"
// before the end.
func CheckPrefix(p string) error {
	switch {
	case strings.Trim(p, "/*") == "": // "", "/", "*", "//", "/*"
		return fmt.Errorf("%q would allow every resource; omit prefixes to allow everything, or name a bucket or path", p)
	case p[0] == '/':
		return fmt.Errorf("%q starts with \"/\", but resources have no leading slash (S3: BUCKET/KEY; links and CloudFront: the path without its leading /); write %q", p, strings.TrimLeft(p, "/"))
	case strings.IndexByte(p, '*') < len(p)-1 && strings.IndexByte(p, '*') >= 0:
		return fmt.Errorf("%q has a \"*\" before its end; \"*\" is allowed only as the last character", p)
	}
	return nil
}

// validity resolves a request's expires against a signer's cap: absent
// means min(1h, max); zero, under a second and over the cap are refused.
func validity(e *Duration, max time.Duration) (time.Duration, error) {
	if e == nil {
		return min(defaultExpires, max), nil
	}
	d := e.D().Truncate(time.Second)
	switch {
	case d <= 0:
		return 0, fieldErr("expires", "must be at least 1s")
	case d > max:
		return 0, fieldErr("expires", "%s is over the maximum of %s", FormatDuration(d), FormatDuration(max))
	}
	return d, nil
}
