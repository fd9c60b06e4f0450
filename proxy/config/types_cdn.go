package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"gatehouse/rules/intel"
)

// TrustedProxy is one trusted_proxies entry: an IP address or CIDR prefix
// (see Prefix), the name of a CDN whose published ranges gatehouse ships
// and refreshes (cloudflare, fastly, cloudfront), "file:PATH" (a local
// list of addresses and prefixes, one a line, "#" comments, re-read when
// it changes) or "url:URL" (such a list fetched over http or https on
// intel.refresh, its last good copy kept in state_dir). Exactly one field
// is set; the zero TrustedProxy is invalid and means "empty entry".
type TrustedProxy struct {
	// Prefix is the entry's network when it is an address or prefix.
	Prefix netip.Prefix
	// Provider is the CDN's name when the entry is one.
	Provider string
	// File is the list's path for a file: entry.
	File string
	// URL is the list's address for a url: entry.
	URL string
}

// trustedProviders are the CDN names trusted_proxies accepts; the ranges
// and client-IP header of each are in rules/intel. Never mutated.
var trustedProviders = intel.ProviderNames()

// IsValid reports whether t was set.
func (t TrustedProxy) IsValid() bool {
	return t.Prefix.IsValid() || t.Provider != "" || t.File != "" || t.URL != ""
}

// Named reports whether t is a named set (a provider or a list) rather
// than one prefix.
func (t TrustedProxy) Named() bool { return t.IsValid() && !t.Prefix.IsValid() }

// String returns the entry as it is written in the file: the name of a
// named set in logs and metrics.
func (t TrustedProxy) String() string {
	switch {
	case t.Prefix.IsValid():
		return t.Prefix.String()
	case t.Provider != "":
		return t.Provider
	case t.File != "":
		return "file:" + t.File
	case t.URL != "":
		return "url:" + t.URL
	}
	return ""
}

// Label is String with a url: list's query (which may hold an API key)
// replaced by "?…": the name of the set in logs, metrics and messages.
func (t TrustedProxy) Label() string {
	if t.URL != "" {
		if i := strings.IndexByte(t.URL, '?'); i >= 0 {
			return "url:" + t.URL[:i] + "?…"
		}
	}
	return t.String()
}

// UnmarshalYAML parses a scalar with ParseTrustedProxy.
func (t *TrustedProxy) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, "an IP address, CIDR prefix, provider name (cloudflare, fastly, cloudfront), file:PATH or url:URL")
	if err != nil {
		return err
	}
	v, err := ParseTrustedProxy(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// ParseTrustedProxy parses one trusted_proxies entry; see TrustedProxy.
// The empty string is the zero TrustedProxy (validation names it).
func ParseTrustedProxy(s string) (TrustedProxy, error) {
	switch {
	case s == "":
		return TrustedProxy{}, nil
	case slices.Contains(trustedProviders, s):
		return TrustedProxy{Provider: s}, nil
	}
	if path, ok := strings.CutPrefix(s, "file:"); ok {
		if path == "" {
			return TrustedProxy{}, fmt.Errorf("%q: file: needs a path, such as file:/etc/gatehouse/proxies.txt", s)
		}
		return TrustedProxy{File: path}, nil
	}
	if raw, ok := strings.CutPrefix(s, "url:"); ok {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return TrustedProxy{}, fmt.Errorf("%q: url: needs an http or https URL, such as url:https://example.com/proxies.txt", s)
		}
		if u.User != nil {
			return TrustedProxy{}, fmt.Errorf("%q: user info in a list URL is written to logs and metrics; serve the list without it", s)
		}
		if u.Fragment != "" {
			return TrustedProxy{}, fmt.Errorf("%q: a URL fragment is never sent; remove it", s)
		}
		return TrustedProxy{URL: raw}, nil
	}
	p, err := ParsePrefix(s)
	if err != nil {
		// A word is a misspelt provider rather than a bad address.
		if !strings.ContainsAny(s, ".:/") {
			hint := suggest(s, trustedProviders)
			if !strings.HasPrefix(hint, " (") {
				hint = ""
			}
			return TrustedProxy{}, fmt.Errorf("%q is not an IP address, CIDR prefix, provider (%s), file:PATH or url:URL%s",
				s, strings.Join(trustedProviders, ", "), hint)
		}
		return TrustedProxy{}, err
	}
	return TrustedProxy{Prefix: p}, nil
}

// TrustedPrefixes returns the address and prefix entries of
// trusted_proxies; the named sets' ranges are loaded by the proxy.
func (f *File) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, t := range f.TrustedProxies {
		if t.Prefix.IsValid() {
			out = append(out, t.Prefix)
		}
	}
	return out
}

// TrustedSets returns the named entries of trusted_proxies, in order.
func (f *File) TrustedSets() []TrustedProxy {
	var out []TrustedProxy
	for _, t := range f.TrustedProxies {
		if t.Named() {
			out = append(out, t)
		}
	}
	return out
}

// trustedSummary describes the named trusted_proxies sets for Summary,
// with the date of each provider's ranges shipped in the binary:
// ", trusted: cloudflare (snapshot 2026-08-22), file:/etc/lb.txt".
func (f *File) trustedSummary() string {
	var parts []string
	for _, t := range f.TrustedSets() {
		s := t.Label()
		if p, ok := intel.ProviderNamed(t.Provider); ok {
			s += " (snapshot " + p.SnapshotDate.UTC().Format(time.DateOnly) + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return ""
	}
	return ", trusted: " + strings.Join(parts, ", ")
}
