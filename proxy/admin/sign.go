package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"gatehouse/middleware"
	"gatehouse/rules/match"
	"gatehouse/signer"
)

// Admin API scopes of the signing endpoints (DESIGN.md).
const (
	scopeSignS3         = "sign:s3"
	scopeSignCloudFront = "sign:cloudfront"
	scopeSignLink       = "sign:link"
)

// maxAuditResource bounds the resource written to an audit line; it comes
// from the request.
const maxAuditResource = 512

// Signing signs what the admin API's /v1/sign endpoints and `gatehouse
// sign -c FILE` are asked for, from one config: S3 pre-signed URLs,
// CloudFront signed URLs and cookies, and gateway-signed links for the
// hosts with signed_links. It is immutable and safe for concurrent use;
// a reload builds a new one.
type Signing struct {
	s3         *signer.S3         // nil without signer.s3
	cloudfront *signer.CloudFront // nil without signer.cloudfront
	// hosts[i] holds hosts[i].signed_links, nil where there are none.
	hosts []*linkHost
	// exact and wildcard find a URL's host, as the router does.
	exact, wildcard map[string]*linkHost
}

// linkHost is one host's signed links.
type linkHost struct {
	field string // "hosts[i].signed_links", for messages
	links *signer.Links
	paths *match.PrefixSet
}

// NotConfiguredError is a signing request for a signer the config does
// not set up (HTTP 422).
type NotConfiguredError struct {
	// Key is the config key that would set it up, such as "signer.s3".
	Key string
}

func (e *NotConfiguredError) Error() string { return e.Key + " is not configured" }

// SigningConfig is what a Signing signs with, built from the config by
// the caller: the signers, and for each host (by its index in
// hosts[]) its signed links, nil where it has none.
type SigningConfig struct {
	S3         *signer.S3         // nil without signer.s3
	CloudFront *signer.CloudFront // nil without signer.cloudfront
	Links      []*LinkHost
}

// LinkHost is one host's signed links and the names it answers to.
type LinkHost struct {
	// Field names the host's signed_links in messages:
	// "hosts[2].signed_links".
	Field string
	// Exact are the host's exact names; Wildcard the domains of its
	// "*.domain" names, as the router keys them.
	Exact, Wildcard []string
	Links           *signer.Links
	// Paths are the paths the host checks links on.
	Paths *match.PrefixSet
}

// NewSigning indexes cfg's signers for the /v1/sign endpoints.
func NewSigning(cfg SigningConfig) *Signing {
	sg := &Signing{s3: cfg.S3, cloudfront: cfg.CloudFront, hosts: make([]*linkHost, len(cfg.Links)),
		exact: map[string]*linkHost{}, wildcard: map[string]*linkHost{}}
	for i, lh := range cfg.Links {
		if lh == nil {
			continue
		}
		h := &linkHost{field: lh.Field, links: lh.Links, paths: lh.Paths}
		sg.hosts[i] = h
		for _, n := range lh.Exact {
			sg.exact[n] = h
		}
		for _, n := range lh.Wildcard {
			sg.wildcard[n] = h
		}
	}
	return sg
}

// S3 pre-signs an S3 URL for a token allowed the resources in allowed
// (nil: any).
func (sg *Signing) S3(ctx context.Context, req signer.S3Request, allowed signer.Prefixes) (signer.S3Result, error) {
	if sg.s3 == nil {
		return signer.S3Result{}, &NotConfiguredError{Key: "signer.s3"}
	}
	return sg.s3.Sign(ctx, req, allowed)
}

// CloudFront signs a CloudFront URL or cookies for a token allowed the
// resources in allowed (nil: any).
func (sg *Signing) CloudFront(req signer.CloudFrontRequest, allowed signer.Prefixes) (signer.CloudFrontResult, error) {
	if sg.cloudfront == nil {
		return signer.CloudFrontResult{}, &NotConfiguredError{Key: "signer.cloudfront"}
	}
	return sg.cloudfront.Sign(req, allowed)
}

// Link signs a gateway link for a token allowed the resources in allowed
// (nil: any). The URL's host must be one of the config's hosts with
// signed_links, and its path under their paths and in canonical form
// (match.EscapePath of its canonical path: no "//", "." or ".." segment,
// no needless escape), so the link names one spelling of the resource;
// the signature covers the canonical host, that raw path and the query.
func (sg *Signing) Link(req signer.LinkRequest, allowed signer.Prefixes) (signer.LinkResult, error) {
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return signer.LinkResult{}, &signer.FieldError{Field: "url", Msg: fmt.Sprintf("%q is not an absolute http(s) URL", req.URL)}
	}
	host, _, ok := middleware.CanonicalHost(u.Host)
	if !ok {
		return signer.LinkResult{}, &signer.FieldError{Field: "url", Msg: fmt.Sprintf("%q is not a valid host", u.Host)}
	}
	lh := sg.lookup(host)
	if lh == nil {
		return signer.LinkResult{}, &signer.FieldError{Field: "url", Msg: fmt.Sprintf("host %s has no signed_links in the config", host)}
	}
	raw := u.EscapedPath()
	c, err := match.Canonical(raw)
	if err != nil {
		return signer.LinkResult{}, &signer.FieldError{Field: "url", Msg: fmt.Sprintf("path %q: %v", raw, err)}
	}
	if !lh.paths.CoversRequest(raw, c) {
		return signer.LinkResult{}, &signer.FieldError{Field: "url", Msg: fmt.Sprintf("path %q is not under %s.paths, so the gateway would not check the link", raw, lh.field)}
	}
	// The link is checked against the raw path the upstream receives;
	// another spelling of the same canonical path ("//", "%61", "./")
	// may be another object upstream, so only one spelling is signed.
	if want := match.EscapePath(c.Path); raw != want {
		return signer.LinkResult{}, &signer.FieldError{Field: "url", Msg: fmt.Sprintf("path %q is not in canonical form; sign %q", raw, want)}
	}
	return lh.links.SignURL(req, u, host, c.Path, allowed)
}

// lookup finds the signed links of a canonical host: exact names first,
// then the longest "*.suffix", as the router does.
func (sg *Signing) lookup(host string) *linkHost {
	if lh := sg.exact[host]; lh != nil {
		return lh
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if lh := sg.wildcard[host[i+1:]]; lh != nil {
				return lh
			}
		}
	}
	return nil
}

// LinksFor returns the signed links of hosts[i], nil when it has none.
func (sg *Signing) LinksFor(i int) *signer.Links {
	if lh := sg.hosts[i]; lh != nil {
		return lh.links
	}
	return nil
}

// SignStatus maps a signing error to the admin API's answer: status,
// the request field at fault and the message. Errors it does not know
// are internal (500) and their text is not shown.
func SignStatus(err error) (status int, field, msg string) {
	var de *signer.DecodeError
	var pe *signer.PrefixError
	var fe *signer.FieldError
	var nc *NotConfiguredError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "body", fmt.Sprintf("body over the limit of %d bytes", mbe.Limit)
	case errors.As(err, &de):
		return http.StatusBadRequest, de.Field, de.Msg
	case errors.As(err, &pe):
		return http.StatusForbidden, pe.Field, strings.TrimPrefix(pe.Error(), pe.Field+": ")
	case errors.As(err, &fe):
		return http.StatusUnprocessableEntity, fe.Field, fe.Msg
	case errors.As(err, &nc):
		return http.StatusUnprocessableEntity, "", nc.Error()
	}
	return http.StatusInternalServerError, "", "signing failed"
}

// tokenPrefixes are the prefixes a token may sign; nil (any) when the
// token lists none.
func tokenPrefixes(tok *Token) signer.Prefixes {
	if len(tok.Prefixes) == 0 {
		return nil
	}
	return tok.Prefixes
}

// auditResource names a URL for the audit log without its query, which
// may carry someone else's signature.
func auditResource(s string) string {
	s, _, _ = strings.Cut(s, "?")
	s, _, _ = strings.Cut(s, "#")
	if len(s) > maxAuditResource {
		s = s[:maxAuditResource] + "…"
	}
	return s
}

// s3Resource, cloudFrontResource and linkResource name what a signing
// request asks for, for the audit line.
func s3Resource(req signer.S3Request) string {
	return auditResource("s3://" + req.Bucket + "/" + req.Key)
}

func cloudFrontResource(req signer.CloudFrontRequest) string {
	if req.Resource != "" {
		return auditResource(req.Resource)
	}
	return auditResource(req.URL)
}

func linkResource(req signer.LinkRequest) string { return auditResource(req.URL) }

// describeSign names, for the audit line of a signing call refused
// before its handler ran, the resource asked for: the body of an
// authenticated caller is decoded as far as it is valid.
func describeSign[T signer.Request](resource func(T) string) func(r *http.Request, rec *auditRecord) {
	return func(r *http.Request, rec *auditRecord) {
		if rec.token == nil {
			return // an unauthenticated body is not worth reading
		}
		if req, err := signer.Decode[T](io.LimitReader(r.Body, MaxBody)); err == nil {
			rec.resource = resource(req)
		}
	}
}

// answerSign writes a signing result, or the error's JSON answer.
func (a *Admin) answerSign(w http.ResponseWriter, res any, err error) int {
	if err == nil {
		writeJSON(w, http.StatusOK, res)
		return http.StatusOK
	}
	code, field, msg := SignStatus(err)
	if code == http.StatusInternalServerError {
		a.log.Error("signing failed", "error", err)
	}
	writeError(w, code, msg, field)
	return code
}

// decodeSign reads a signing request body of at most MaxBody bytes;
// over it, the error wraps an *http.MaxBytesError (SignStatus: 413).
func decodeSign[T signer.Request](w http.ResponseWriter, r *http.Request) (T, error) {
	if aw, ok := w.(*auditWriter); ok {
		w = aw.ResponseWriter // so the server closes the connection after a 413
	}
	return signer.Decode[T](http.MaxBytesReader(w, r.Body, MaxBody))
}

func (a *Admin) signS3(w http.ResponseWriter, r *http.Request, rec *auditRecord) int {
	req, err := decodeSign[signer.S3Request](w, r)
	if err != nil {
		return a.answerSign(w, nil, err)
	}
	rec.resource = s3Resource(req)
	res, err := a.cfg.Current().Signing.S3(r.Context(), req, tokenPrefixes(rec.token))
	return a.answerSign(w, res, err)
}

func (a *Admin) signCloudFront(w http.ResponseWriter, r *http.Request, rec *auditRecord) int {
	req, err := decodeSign[signer.CloudFrontRequest](w, r)
	if err != nil {
		return a.answerSign(w, nil, err)
	}
	rec.resource = cloudFrontResource(req)
	res, err := a.cfg.Current().Signing.CloudFront(req, tokenPrefixes(rec.token))
	return a.answerSign(w, res, err)
}

func (a *Admin) signLink(w http.ResponseWriter, r *http.Request, rec *auditRecord) int {
	req, err := decodeSign[signer.LinkRequest](w, r)
	if err != nil {
		return a.answerSign(w, nil, err)
	}
	rec.resource = auditResource(req.URL)
	res, err := a.cfg.Current().Signing.Link(req, tokenPrefixes(rec.token))
	return a.answerSign(w, res, err)
}
