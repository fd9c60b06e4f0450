package signer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MaxS3Expires is SigV4's own limit on a pre-signed URL's validity.
const MaxS3Expires = 7 * 24 * time.Hour

// defaultMaxExpires is every signer's cap when its config sets none.
const defaultMaxExpires = 24 * time.Hour

// S3Config configures S3 pre-signing (the config's signer.s3).
type S3Config struct {
	// Region is the bucket's region, such as "eu-west-1". Required.
	Region string
	// Endpoint is the base URL of an S3-compatible server
	// ("http://127.0.0.1:7070"). Empty: AWS.
	Endpoint string
	// PathStyle puts the bucket in the path (https://host/bucket/key)
	// instead of the host name, as most S3-compatible servers need.
	PathStyle bool
	// AccessKeyID and SecretAccessKey are static credentials. Both empty:
	// the AWS SDK's default chain (environment, shared files, web
	// identity, container and instance roles), resolved when a URL is
	// signed.
	AccessKeyID     string
	SecretAccessKey string
	// MaxExpires caps a URL's validity, at most MaxS3Expires. Zero: 24h.
	MaxExpires time.Duration
	// Now is the clock URLs are signed at. Nil: time.Now.
	Now func() time.Time
}

// S3 pre-signs S3 GET and PUT URLs with SigV4 (the AWS SDK's
// PresignClient). It is safe for concurrent use.
type S3 struct {
	client     *s3.PresignClient
	v4         *v4.Signer
	maxExpires time.Duration
	now        func() time.Time
}

// NewS3 builds an S3 pre-signer. With static credentials it reads
// nothing; otherwise it loads the SDK's default config (environment and
// shared config files, no network: credentials are fetched when a URL is
// first signed, then cached).
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Region == "" {
		return nil, errors.New("s3 signer: a region is required")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3 signer: endpoint %q is not an absolute http(s) URL", cfg.Endpoint)
		}
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errors.New("s3 signer: give both access key ID and secret access key, or neither")
	}
	switch {
	case cfg.MaxExpires == 0:
		cfg.MaxExpires = defaultMaxExpires
	case cfg.MaxExpires < time.Second || cfg.MaxExpires > MaxS3Expires:
		return nil, fmt.Errorf("s3 signer: max expires %s is not between 1s and 7d (the SigV4 limit)", cfg.MaxExpires)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var awsCfg aws.Config
	if cfg.AccessKeyID != "" {
		awsCfg = aws.Config{
			Region:      cfg.Region,
			Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		}
	} else {
		var err error
		awsCfg, err = awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
		if err != nil {
			return nil, fmt.Errorf("s3 signer: load the AWS default config: %w", err)
		}
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// A presigned PUT must not carry a checksum of a body the
		// signer never sees.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	return &S3{
		client: s3.NewPresignClient(client),
		// S3 signs the path as sent: no second escaping (the SDK's own
		// S3 presigner is configured the same way).
		v4:         v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }),
		maxExpires: cfg.MaxExpires,
		now:        cfg.Now,
	}, nil
}

// S3Result is a pre-signed S3 URL.
type S3Result struct {
	// URL is the pre-signed URL.
	URL string `json:"url"`
	// Method is the HTTP method the URL is signed for.
	Method string `json:"method"`
	// ExpiresAt is when the URL stops working (RFC 3339, UTC).
	ExpiresAt time.Time `json:"expires_at"`
	// Headers are the signed headers the request must carry besides Host
	// (Content-Type for a PUT with a content type).
	Headers map[string]string `json:"headers,omitempty"`
}

// Sign pre-signs req for a token allowed the resources in allowed (nil:
// any). A request that cannot be signed as asked returns a *FieldError,
// one outside allowed a *PrefixError.
func (s *S3) Sign(ctx context.Context, req S3Request, allowed Prefixes) (S3Result, error) {
	if err := checkBucket(req.Bucket); err != nil {
		return S3Result{}, err
	}
	if err := checkKey(req.Key); err != nil {
		return S3Result{}, err
	}
	method := strings.ToUpper(req.Method)
	switch method {
	case "":
		method = http.MethodGet
	case http.MethodGet, http.MethodPut:
	default:
		return S3Result{}, fieldErr("method", "%q is not GET or PUT", req.Method)
	}
	if req.ContentType != "" {
		if method != http.MethodPut {
			return S3Result{}, fieldErr("content_type", "only a PUT is signed with a content type")
		}
		if !validHeaderValue(req.ContentType) {
			return S3Result{}, fieldErr("content_type", "%q is not a valid header value", req.ContentType)
		}
	}
	d, err := validity(req.Expires, s.maxExpires)
	if err != nil {
		return S3Result{}, err
	}
	if resource := req.Bucket + "/" + req.Key; !allowed.Allow(resource) {
		return S3Result{}, &PrefixError{Field: "key", Resource: resource}
	}

	at := s.now().UTC().Truncate(time.Second)
	opts := []func(*s3.PresignOptions){
		s3.WithPresignExpires(d),
		func(o *s3.PresignOptions) { o.Presigner = presignAt{v4: s.v4, at: at} },
	}
	var signed *v4.PresignedHTTPRequest
	if method == http.MethodGet {
		signed, err = s.client.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &req.Bucket, Key: &req.Key}, opts...)
	} else {
		in := &s3.PutObjectInput{Bucket: &req.Bucket, Key: &req.Key}
		if req.ContentType != "" {
			in.ContentType = &req.ContentType
		}
		signed, err = s.client.PresignPutObject(ctx, in, opts...)
	}
	if err != nil {
		return S3Result{}, fmt.Errorf("presign s3 %s: %w", method, err)
	}
	res := S3Result{URL: signed.URL, Method: signed.Method, ExpiresAt: at.Add(d)}
	for name, vals := range signed.SignedHeader {
		if strings.EqualFold(name, "Host") || len(vals) == 0 {
			continue
		}
		if res.Headers == nil {
			res.Headers = map[string]string{}
		}
		res.Headers[http.CanonicalHeaderKey(name)] = strings.Join(vals, ",")
	}
	return res, nil
}

// presignAt is the SigV4 presigner at a fixed signing time: the signer's
// clock, so ExpiresAt is exact and tests can sign in the past.
type presignAt struct {
	v4 *v4.Signer
	at time.Time
}

func (p presignAt) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return p.v4.PresignHTTP(ctx, creds, r, payloadHash, service, region, p.at, optFns...)
}

// checkBucket applies S3's bucket naming rules: 3 to 63 lower-case
// letters, digits, dots and hyphens, starting and ending with a letter or
// digit, no two dots in a row.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fieldErr("bucket", "%q is not 3 to 63 characters long", b)
	}
	if strings.Contains(b, "..") {
		return fieldErr("bucket", "%q has two dots in a row", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
		if !alnum && ((c != '.' && c != '-') || i == 0 || i == len(b)-1) {
			return fieldErr("bucket", "%q is not a bucket name (lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit)", b)
		}
	}
	return nil
}

// checkKey refuses keys S3 would refuse (empty, over 1024 bytes, not
// UTF-8) and keys that an S3-compatible server storing objects as files
// could resolve outside the prefix the token was checked against, as
// the gateway's path rules refuse such paths (match.Canonical): control
// characters, "\" (a separator on Windows), segments of only dots and
// spaces ("..", "...", ".. ", which Windows reads as dot segments), and
// the same hidden behind percent-encoding ("%2e%2e", "%2E.", "..%5c",
// "%252e%252e"), for servers that decode keys once or twice more.
func checkKey(k string) error {
	switch {
	case k == "":
		return fieldErr("key", "a key is required")
	case len(k) > 1024:
		return fieldErr("key", "longer than 1024 bytes")
	case !utf8.ValidString(k):
		return fieldErr("key", "not valid UTF-8")
	}
	// Every stage is k decoded once more, until decoding changes
	// nothing; each is checked as a server might read it. Each decode
	// shortens the key, so the loop ends.
	for stage, decoded := k, false; ; decoded = true {
		for _, c := range stage {
			switch {
			case (c < 0x20 || c == 0x7f) && decoded:
				return fieldErr("key", "%q contains a percent-encoded control character", k)
			case c < 0x20 || c == 0x7f:
				return fieldErr("key", "%q contains a control character", k)
			case c == '\\' && decoded:
				return fieldErr("key", "%q contains a percent-encoded \"\\\", which some S3-compatible servers read as a path separator", k)
			case c == '\\':
				return fieldErr("key", "%q contains a \"\\\", which some S3-compatible servers read as a path separator", k)
			}
		}
		for seg := range strings.SplitSeq(stage, "/") {
			switch {
			case seg == "" || !dotsAndSpaces(seg):
			case decoded:
				return fieldErr("key", "%q has a percent-encoded dot segment (it decodes to %q)", k, seg)
			case seg == "." || seg == "..":
				return fieldErr("key", "%q has a %q segment", k, seg)
			default:
				return fieldErr("key", "%q has a segment of only dots and spaces (%q), which Windows-backed servers read as a dot segment", k, seg)
			}
		}
		next := percentDecode(stage)
		if next == stage {
			return nil
		}
		stage = next
	}
}

// dotsAndSpaces reports whether seg is made of dots and spaces only.
func dotsAndSpaces(seg string) bool {
	for i := 0; i < len(seg); i++ {
		if seg[i] != '.' && seg[i] != ' ' {
			return false
		}
	}
	return true
}

// percentDecode decodes every valid %XX escape in s once and leaves
// anything else as it is ("100%" stays "100%"): the lenient decoding a
// server might apply to a key.
func percentDecode(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// validHeaderValue reports whether v may be sent as a header value:
// visible ASCII, spaces and tabs (RFC 9110 §5.5, obs-text excluded).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return strings.TrimSpace(v) != ""
}
