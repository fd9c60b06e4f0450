package middleware

import (
	"fmt"
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// HeadersConfig edits the response headers of one host.
type HeadersConfig struct {
	// Set gives headers to set on every response, replacing what the
	// upstream sent. An empty value removes the header, which is how a
	// default is turned off.
	Set map[string]string
	// Remove lists headers to delete from every response.
	Remove []string
	// HSTS is the Strict-Transport-Security value ApplyTLS sets,
	// replacing the upstream's (RFC 6797). "" sets none and leaves the
	// upstream's alone. A Strict-Transport-Security entry in Set wins.
	HSTS string
}

// defaultResponseHeaders are set unless the host's config overrides them:
// no MIME sniffing, and no full URLs leaked to other origins.
var defaultResponseHeaders = [...][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
}

// defaultRemovedHeaders leak the upstream's software and version.
var defaultRemovedHeaders = [...]string{"Server", "X-Powered-By"}

// HeaderPolicy is a compiled HeadersConfig. It is immutable and safe for
// concurrent use.
//
// It is applied to the upstream's response (ReverseProxy.ModifyResponse)
// and to the gateway's own answers rather than by wrapping the
// ResponseWriter: the proxy copies upstream headers with Add, so headers
// set before it would be doubled, and a removal must see what the upstream
// sent.
type HeaderPolicy struct {
	set    [][2]string // canonical name, value
	remove []string    // canonical names
	hsts   []string    // Strict-Transport-Security for TLS answers; nil: none
}

// NewHeaderPolicy validates cfg and merges it with the defaults.
func NewHeaderPolicy(cfg HeadersConfig) (*HeaderPolicy, error) {
	hp := &HeaderPolicy{}
	if cfg.HSTS != "" {
		if !httpguts.ValidHeaderFieldValue(cfg.HSTS) {
			return nil, fmt.Errorf("hsts %q contains a control character", cfg.HSTS)
		}
		hp.hsts = []string{cfg.HSTS}
	}
	overridden := make(map[string]bool, len(cfg.Set))
	for name, value := range cfg.Set {
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("header name %q is not a valid field name", name)
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, fmt.Errorf("header %s: value contains a control character", name)
		}
		name = http.CanonicalHeaderKey(name)
		overridden[name] = true
		if name == "Strict-Transport-Security" {
			hp.hsts = nil
		}
		if value == "" {
			hp.remove = append(hp.remove, name)
			continue
		}
		hp.set = append(hp.set, [2]string{name, value})
	}
	for _, d := range defaultResponseHeaders {
		if !overridden[d[0]] {
			hp.set = append(hp.set, d)
		}
	}
	for _, name := range append(defaultRemovedHeaders[:], cfg.Remove...) {
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("header name %q is not a valid field name", name)
		}
		name = http.CanonicalHeaderKey(name)
		if !overridden[name] {
			hp.remove = append(hp.remove, name)
		}
	}
	return hp, nil
}

// ApplyTLS is Apply for an answer to a request that came over TLS: it also
// sets the Strict-Transport-Security header. Browsers ignore that header
// on plain HTTP (RFC 6797 §8.1), so it is only sent where it counts.
func (hp *HeaderPolicy) ApplyTLS(h http.Header) {
	hp.Apply(h)
	if hp.hsts != nil {
		h["Strict-Transport-Security"] = hp.hsts
	}
}

// Apply edits h in place: removals first, then the set headers.
func (hp *HeaderPolicy) Apply(h http.Header) {
	for _, name := range hp.remove {
		delete(h, name)
	}
	for _, kv := range hp.set {
		if v, ok := h[kv[0]]; ok && len(v) == 1 {
			v[0] = kv[1] // reuse the slice the upstream's header came in
			continue
		}
		h[kv[0]] = []string{kv[1]}
	}
}
