package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	testAccessKey = "AKIDGATEHOUSETEST"
	testSecretKey = "gatehouse/test+secret/key"
)

func newS3(t *testing.T, now time.Time, endpoint string, pathStyle bool) *S3 {
	t.Helper()
	s, err := NewS3(t.Context(), S3Config{
		Region:          "eu-west-1",
		Endpoint:        endpoint,
		PathStyle:       pathStyle,
		AccessKeyID:     testAccessKey,
		SecretAccessKey: testSecretKey,
		MaxExpires:      12 * time.Hour,
		Now:             func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// s3Escape is SigV4's URI encoding: every byte but the unreserved ones
// (and "/", for a path) as %XX in upper case.
func s3Escape(s string, path bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 || (path && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// sigV4Signature recomputes a presigned URL's signature from the AWS
// documentation ("Authenticating requests: using query parameters"),
// independently of the SDK, for the request with the given signed
// headers (lower-case name → value).
func sigV4Signature(t *testing.T, method string, u *url.URL, path string, headers map[string]string) string {
	t.Helper()
	q := u.Query()
	var keys []string
	for k := range q {
		if k != "X-Amz-Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var query []string
	for _, k := range keys {
		query = append(query, s3Escape(k, false)+"="+s3Escape(q.Get(k), false))
	}
	var names []string
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonHeaders string
	for _, n := range names {
		canonHeaders += n + ":" + headers[n] + "\n"
	}
	if got := q.Get("X-Amz-SignedHeaders"); got != strings.Join(names, ";") {
		t.Fatalf("X-Amz-SignedHeaders = %q, want %q", got, strings.Join(names, ";"))
	}
	canonical := strings.Join([]string{method, path, strings.Join(query, "&"), canonHeaders, strings.Join(names, ";"), "UNSIGNED-PAYLOAD"}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	date := q.Get("X-Amz-Date")
	scope := date[:8] + "/eu-west-1/s3/aws4_request"
	if q.Get("X-Amz-Credential") != testAccessKey+"/"+scope {
		t.Fatalf("X-Amz-Credential = %q, want %q", q.Get("X-Amz-Credential"), testAccessKey+"/"+scope)
	}
	toSign := "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+testSecretKey), date[:8])
	key = hmacSHA256(key, "eu-west-1")
	key = hmacSHA256(key, "s3")
	key = hmacSHA256(key, "aws4_request")
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func TestS3Sign(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 999, time.UTC)
	tests := []struct {
		name      string
		endpoint  string
		pathStyle bool
		req       S3Request
		method    string
		host      string
		path      string
		expires   string
		headers   map[string]string
	}{
		{name: "GET default expiry", endpoint: "http://127.0.0.1:7070", pathStyle: true, req: S3Request{Bucket: "media", Key: "videos/a b+c.mp4"},
			method: "GET", host: "127.0.0.1:7070", path: "/media/videos/a%20b%2Bc.mp4", expires: "3600"},
		{name: "GET virtual host", endpoint: "https://s3.example.com", req: S3Request{Bucket: "media", Key: "a.mp4", Expires: ptr(Duration(90 * time.Second))},
			method: "GET", host: "media.s3.example.com", path: "/a.mp4", expires: "90"},
		{name: "PUT with content type", endpoint: "http://127.0.0.1:7070", pathStyle: true, req: S3Request{Bucket: "uploads", Key: "u/1.mp4", Method: "put", ContentType: "video/mp4", Expires: ptr(Duration(12 * time.Hour))},
			method: "PUT", host: "127.0.0.1:7070", path: "/uploads/u/1.mp4", expires: "43200", headers: map[string]string{"content-type": "video/mp4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := newS3(t, now, tc.endpoint, tc.pathStyle).Sign(t.Context(), tc.req, nil)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(res.URL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if res.Method != tc.method || u.Host != tc.host || u.EscapedPath() != tc.path || q.Get("X-Amz-Expires") != tc.expires ||
				q.Get("X-Amz-Date") != "20300102T030405Z" || q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
				t.Fatalf("Sign = %s %s; want %s on %s%s, X-Amz-Expires %s, X-Amz-Date of the clock", res.Method, res.URL, tc.method, tc.host, tc.path, tc.expires)
			}
			if want := now.Truncate(time.Second).Add(mustAtoiSeconds(t, tc.expires)); !res.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v, want %v", res.ExpiresAt, want)
			}
			if wantPath := "/" + s3Escape(tc.req.Key, true); !tc.pathStyle && tc.path != wantPath {
				t.Fatalf("test case path %q, want %q", tc.path, wantPath)
			}
			headers := map[string]string{"host": tc.host}
			for k, v := range tc.headers {
				headers[k] = v
				if res.Headers[httpCanonical(k)] != v {
					t.Errorf("Headers = %v, want %s: %s", res.Headers, k, v)
				}
			}
			if len(res.Headers) != len(tc.headers) {
				t.Errorf("Headers = %v, want %v", res.Headers, tc.headers)
			}
			if got, want := q.Get("X-Amz-Signature"), sigV4Signature(t, tc.method, u, tc.path, headers); got != want {
				t.Errorf("X-Amz-Signature = %s, recomputed %s", got, want)
			}
		})
	}
}

func httpCanonical(k string) string {
	parts := strings.Split(k, "-")
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(parts, "-")
}

func mustAtoiSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s + "s")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestS3SignErrors(t *testing.T) {
	t.Parallel()
	s := newS3(t, time.Now(), "http://127.0.0.1:7070", true)
	tests := []struct {
		name      string
		req       S3Request
		allowed   Prefixes
		wantField string
		wantErr   string
		forbidden bool
	}{
		{name: "short bucket", req: S3Request{Bucket: "ab", Key: "k"}, wantField: "bucket", wantErr: "3 to 63"},
		{name: "upper-case bucket", req: S3Request{Bucket: "Media", Key: "k"}, wantField: "bucket", wantErr: "not a bucket name"},
		{name: "bucket with slash", req: S3Request{Bucket: "media/x", Key: "k"}, wantField: "bucket", wantErr: "not a bucket name"},
		{name: "bucket double dot", req: S3Request{Bucket: "a..b", Key: "k"}, wantField: "bucket", wantErr: "two dots"},
		{name: "no key", req: S3Request{Bucket: "media"}, wantField: "key", wantErr: "required"},
		{name: "dot-dot key", req: S3Request{Bucket: "media", Key: "free/../paid/a.mp4"}, wantField: "key", wantErr: `".." segment`},
		{name: "control key", req: S3Request{Bucket: "media", Key: "a\nb"}, wantField: "key", wantErr: "control character"},
		// the class the gateway's path rules refuse.
		{name: "three dots", req: S3Request{Bucket: "media", Key: "free/.../paid/a.mp4"}, wantField: "key", wantErr: "only dots and spaces"},
		{name: "dots and a space", req: S3Request{Bucket: "media", Key: "free/.. /paid/a.mp4"}, wantField: "key", wantErr: "only dots and spaces"},
		{name: "only a space", req: S3Request{Bucket: "media", Key: "free/ /a.mp4"}, wantField: "key", wantErr: "only dots and spaces"},
		{name: "backslash", req: S3Request{Bucket: "media", Key: `free\..\paid\a.mp4`}, wantField: "key", wantErr: `"\"`},
		{name: "encoded dot-dot", req: S3Request{Bucket: "media", Key: "free/%2e%2e/paid/a.mp4"}, wantField: "key", wantErr: "percent-encoded dot segment"},
		{name: "encoded dot-dot, upper case", req: S3Request{Bucket: "media", Key: "free/%2E%2E/paid/a.mp4"}, wantField: "key", wantErr: "percent-encoded dot segment"},
		{name: "half-encoded dot-dot", req: S3Request{Bucket: "media", Key: "free/.%2e/paid/a.mp4"}, wantField: "key", wantErr: "percent-encoded dot segment"},
		{name: "encoded dot", req: S3Request{Bucket: "media", Key: "free/%2e/a.mp4"}, wantField: "key", wantErr: "percent-encoded dot segment"},
		{name: "double-encoded dot-dot", req: S3Request{Bucket: "media", Key: "free/%252e%252e/paid/a.mp4"}, wantField: "key", wantErr: "percent-encoded dot segment"},
		{name: "encoded slash and dot-dot", req: S3Request{Bucket: "media", Key: "free/..%2fpaid/a.mp4"}, wantField: "key", wantErr: "percent-encoded dot segment"},
		{name: "encoded backslash", req: S3Request{Bucket: "media", Key: "free/..%5cpaid"}, wantField: "key", wantErr: `percent-encoded "\"`},
		{name: "encoded NUL", req: S3Request{Bucket: "media", Key: "free/a%00.mp4"}, wantField: "key", wantErr: "percent-encoded control character"},
		{name: "long key", req: S3Request{Bucket: "media", Key: strings.Repeat("k", 1025)}, wantField: "key", wantErr: "1024"},
		{name: "DELETE", req: S3Request{Bucket: "media", Key: "k", Method: "DELETE"}, wantField: "method", wantErr: "not GET or PUT"},
		{name: "content type on GET", req: S3Request{Bucket: "media", Key: "k", ContentType: "video/mp4"}, wantField: "content_type", wantErr: "only a PUT"},
		{name: "content type with newline", req: S3Request{Bucket: "media", Key: "k", Method: "PUT", ContentType: "video/mp4\r\nX: y"}, wantField: "content_type", wantErr: "not a valid header value"},
		{name: "over the cap", req: S3Request{Bucket: "media", Key: "k", Expires: ptr(Duration(13 * time.Hour))}, wantField: "expires", wantErr: "13h is over the maximum of 12h"},
		{name: "outside prefixes", req: S3Request{Bucket: "media", Key: "paid/a"}, allowed: Prefixes{"media/free/"}, wantField: "key", wantErr: `"media/paid/a" is outside`, forbidden: true},
		{name: "other bucket", req: S3Request{Bucket: "mediax", Key: "free/a"}, allowed: Prefixes{"media/"}, wantField: "key", wantErr: "outside", forbidden: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Sign(t.Context(), tc.req, tc.allowed)
			var fe *FieldError
			var pe *PrefixError
			switch {
			case err == nil || !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Sign(%+v) = %v, want error containing %q", tc.req, err, tc.wantErr)
			case tc.forbidden && (!errors.As(err, &pe) || pe.Field != tc.wantField):
				t.Fatalf("Sign = %#v, want a PrefixError for %s", err, tc.wantField)
			case !tc.forbidden && (!errors.As(err, &fe) || fe.Field != tc.wantField):
				t.Fatalf("Sign = %#v, want a FieldError for %s", err, tc.wantField)
			}
		})
	}
	if res, err := s.Sign(t.Context(), S3Request{Bucket: "media", Key: "free/a"}, Prefixes{"media/free/"}); err != nil || res.URL == "" {
		t.Errorf("inside the prefixes: %v, want a URL", err)
	}
	// Dots and percent signs that form no dot segment stay signable.
	for _, key := range []string{"free/a.b.mp4", "free/..a", "free/a..", "free/100%", "free/100%25 off.mp4", "free/%2e%2ea", ".hidden/x", "a//b"} {
		if _, err := s.Sign(t.Context(), S3Request{Bucket: "media", Key: key}, nil); err != nil {
			t.Errorf("Sign(key %q) = %v, want a URL", key, err)
		}
	}
}

func TestNewS3Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     S3Config
		wantErr string
	}{
		{name: "no region", cfg: S3Config{}, wantErr: "a region is required"},
		{name: "bad endpoint", cfg: S3Config{Region: "r", Endpoint: "127.0.0.1:7070"}, wantErr: "not an absolute http(s) URL"},
		{name: "half credentials", cfg: S3Config{Region: "r", AccessKeyID: "a"}, wantErr: "give both"},
		{name: "over SigV4", cfg: S3Config{Region: "r", AccessKeyID: "a", SecretAccessKey: "b", MaxExpires: 8 * 24 * time.Hour}, wantErr: "not between 1s and 7d"},
	}
	for _, tc := range tests {
		if _, err := NewS3(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: NewS3 = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}
