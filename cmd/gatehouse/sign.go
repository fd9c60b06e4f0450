package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"gatehouse/proxy"
	"gatehouse/proxy/admin"
	"gatehouse/proxy/config"
	"gatehouse/signer"
)

const signUsage = `usage: gatehouse sign s3 --bucket B --key K [--method GET|PUT] [--content-type T] [--expires 1h]
       gatehouse sign cloudfront --url URL [--resource PATTERN] [--expires 1h] [--not-before T] [--ip CIDR] [--cookies]
       gatehouse sign link --url URL [--method GET] [--expires 1h] [--ip IP]
prints the signed URL (or the cookies' Set-Cookie values) and the expiry.
flags for every form:
  --admin URL   sign through a running gateway (default $GATEHOUSE_ADMIN or http://127.0.0.1:9901)
  --token T     its admin token (default $GATEHOUSE_TOKEN)
  --token-file FILE  read the admin token from FILE (one line), instead of --token
  -c FILE       sign locally with the keys FILE configures, without a gateway
  --expires D   validity: 15m, 2h, 1d or seconds (default 1h, or the configured maximum if shorter)
  --json        print the admin API's JSON answer
`

// signFlags are the flags of every sign form; each form adds its own.
type signFlags struct {
	fs        *flag.FlagSet
	remote    *adminFlags
	config    *string
	expires   *string
	asJSON    *bool
	url       *string
	method    *string
	ip        *string
	bucket    *string
	key       *string
	ctype     *string
	resource  *string
	notBefore *string
	cookies   *bool
}

func newSignFlags(kind string, stderr io.Writer) *signFlags {
	fs := flag.NewFlagSet("sign "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, signUsage) }
	f := &signFlags{
		fs:      fs,
		remote:  addAdminFlags(fs),
		config:  fs.String("c", "", "sign locally with the keys of config `FILE`"),
		expires: fs.String("expires", "", "validity (15m, 2h, 1d, or seconds)"),
		asJSON:  fs.Bool("json", false, "print the answer as JSON"),
	}
	switch kind {
	case "s3":
		f.bucket = fs.String("bucket", "", "bucket name")
		f.key = fs.String("key", "", "object key")
		f.method = fs.String("method", "GET", "GET (download) or PUT (upload)")
		f.ctype = fs.String("content-type", "", "PUT: the Content-Type the upload must carry")
	case "cloudfront":
		f.url = fs.String("url", "", "the https URL on a configured CloudFront domain")
		f.resource = fs.String("resource", "", "custom policy resource with * and ? wildcards")
		f.notBefore = fs.String("not-before", "", "RFC 3339 time the signature starts to work")
		f.ip = fs.String("ip", "", "CIDR prefix (or address) viewers must come from")
		f.cookies = fs.Bool("cookies", false, "sign cookies instead of a URL")
	case "link":
		f.url = fs.String("url", "", "the URL on a host with signed_links")
		f.method = fs.String("method", "GET", "HTTP method the link is for")
		f.ip = fs.String("ip", "", "bind the link to this client address")
	}
	return f
}

// signFlagNames maps the sign requests' JSON fields to the flags that set
// them, so errors name what the user typed.
var signFlagNames = map[string]string{
	"bucket": "--bucket", "key": "--key", "method": "--method", "content_type": "--content-type",
	"expires": "--expires", "url": "--url", "resource": "--resource", "not_before": "--not-before",
	"ip_range": "--ip", "ip": "--ip", "cookies": "--cookies",
}

// signRequest builds the request of a sign form from its flags; an error
// is a usage error.
func (f *signFlags) signRequest(kind string) (any, error) {
	var expires *signer.Duration
	if *f.expires != "" {
		d, err := signer.ParseExpires(*f.expires)
		if err != nil {
			return nil, flagDurationError("--expires", err)
		}
		v := signer.Duration(d)
		expires = &v
	}
	switch kind {
	case "s3":
		if *f.bucket == "" || *f.key == "" {
			return nil, fmt.Errorf("--bucket and --key are required")
		}
		return signer.S3Request{Bucket: *f.bucket, Key: *f.key, Method: strings.ToUpper(*f.method), Expires: expires, ContentType: *f.ctype}, nil
	case "cloudfront":
		if *f.url == "" {
			return nil, fmt.Errorf("--url is required")
		}
		req := signer.CloudFrontRequest{URL: *f.url, Resource: *f.resource, Expires: expires, IPRange: *f.ip, Cookies: *f.cookies}
		if *f.notBefore != "" {
			t, err := time.Parse(time.RFC3339, *f.notBefore)
			if err != nil {
				return nil, fmt.Errorf("--not-before %q is not an RFC 3339 time such as 2030-01-02T15:04:05Z", *f.notBefore)
			}
			req.NotBefore = &signer.Time{Time: t}
		}
		return req, nil
	case "link":
		if *f.url == "" {
			return nil, fmt.Errorf("--url is required")
		}
		return signer.LinkRequest{URL: *f.url, Method: strings.ToUpper(*f.method), Expires: expires, IP: *f.ip}, nil
	}
	return nil, fmt.Errorf("unknown form %q", kind)
}

func signCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "s3" && args[0] != "cloudfront" && args[0] != "link") {
		fmt.Fprint(stderr, signUsage)
		return exitUsage
	}
	kind := args[0]
	f := newSignFlags(kind, stderr)
	if err := f.fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse sign %s: unexpected argument %q\n", kind, f.fs.Arg(0))
		return exitUsage
	}
	if *f.config != "" && f.remote.given() {
		fmt.Fprintf(stderr, "gatehouse sign %s: -c signs locally; --admin and --token (or --token-file) sign through a gateway: give one or the other\n", kind)
		return exitUsage
	}
	req, err := f.signRequest(kind)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse sign %s: %v\n", kind, err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var body []byte
	if *f.config != "" {
		var code int
		if body, code = signLocal(ctx, kind, *f.config, req, stderr); code != exitOK {
			return code
		}
	} else {
		c, err := f.remote.client()
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse sign %s: %v\n", kind, err)
			return exitUsage
		}
		code, b, err := c.call(ctx, http.MethodPost, "/v1/sign/"+kind, req)
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse sign %s: %v\n", kind, err)
			return exitRuntime
		}
		if code != http.StatusOK {
			e := c.describeAPIError(code, b, signFlagNames)
			fmt.Fprintf(stderr, "gatehouse sign %s: %s\n", kind, e.msg)
			if e.usage {
				return exitUsage
			}
			return exitRuntime
		}
		body = b
	}
	if *f.asJSON {
		_, _ = stdout.Write(body) // stdout; nothing to do if it fails
		return exitOK
	}
	return printSigned(stdout, stderr, kind, body)
}

// signLocal signs req with the signers of the config at path and returns
// the answer as the admin API would give it.
func signLocal(ctx context.Context, kind, path string, req any, stderr io.Writer) ([]byte, int) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, loadExit(err)
	}
	sg, err := proxy.NewSigning(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse sign %s: %v\n", kind, err)
		return nil, exitRuntime
	}
	var res any
	switch r := req.(type) {
	case signer.S3Request:
		res, err = sg.S3(ctx, r, nil)
	case signer.CloudFrontRequest:
		res, err = sg.CloudFront(r, nil)
	case signer.LinkRequest:
		res, err = sg.Link(r, nil)
	}
	if err != nil {
		code, field, msg := admin.SignStatus(err)
		if code == http.StatusInternalServerError {
			msg = err.Error() // the operator's own terminal: the whole story
		}
		exit := exitRuntime
		if name, ok := signFlagNames[field]; ok {
			msg = name + ": " + msg
			if code == http.StatusBadRequest {
				exit = exitUsage // malformed, as a gateway would answer
			}
		} else if field != "" {
			msg = field + ": " + msg
		}
		fmt.Fprintf(stderr, "gatehouse sign %s: %s\n", kind, msg)
		return nil, exit
	}
	// The admin API's encoding: "&" in a signed URL stays "&", not
	// "\u0026", so the line can be copied as it is.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintf(stderr, "gatehouse sign %s: %v\n", kind, err)
		return nil, exitRuntime
	}
	return buf.Bytes(), exitOK
}

// printSigned prints an answer for people: the URL (or one Set-Cookie
// value per line), the signed headers to send, and the expiry.
func printSigned(stdout, stderr io.Writer, kind string, body []byte) int {
	var res struct {
		URL       string            `json:"url"`
		Method    string            `json:"method"`
		Headers   map[string]string `json:"headers"`
		Cookies   []signer.Cookie   `json:"cookies"`
		ExpiresAt time.Time         `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		fmt.Fprintf(stderr, "gatehouse sign %s: unexpected answer: %v\n", kind, err)
		return exitRuntime
	}
	if res.URL != "" {
		fmt.Fprintln(stdout, res.URL)
	}
	for _, c := range res.Cookies {
		fmt.Fprintln(stdout, "Set-Cookie: "+c.SetCookie)
	}
	if kind == "s3" {
		fmt.Fprintln(stdout, "method:", res.Method)
	}
	for _, name := range slices.Sorted(maps.Keys(res.Headers)) {
		fmt.Fprintf(stdout, "header: %s: %s\n", name, res.Headers[name])
	}
	fmt.Fprintln(stdout, "expires:", res.ExpiresAt.UTC().Format(time.RFC3339))
	return exitOK
}
