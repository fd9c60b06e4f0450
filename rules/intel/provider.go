package intel

import (
	"bytes"
	"embed"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// snapshots holds each provider's published ranges as of its
// SnapshotDate, in the provider's own format (see providers/README.md).
//
//go:embed providers/*.txt providers/*.json
var snapshots embed.FS

// headerKind says how a provider writes the client address in its header.
type headerKind uint8

const (
	headerAddr     headerKind = iota // a bare address: CF-Connecting-IP
	headerAddrPort                   // address:port, IPv6 unbracketed: CloudFront-Viewer-Address
)

// Provider is a CDN whose edge may connect to gatehouse: where it
// publishes its address ranges, and which request header carries the
// client's address when the peer is one of those ranges. Provider values
// are immutable once returned; their methods are safe for concurrent use.
type Provider struct {
	// Name is the name trusted_proxies uses: cloudflare, fastly or
	// cloudfront.
	Name string
	// URLs are where the ranges are published; a refresh reads all of
	// them and the set is their union.
	URLs []string
	// Format is the format of every URL and of the snapshot.
	Format Format
	// Header is the request header the provider writes the client's
	// address in, canonical form.
	Header string
	// SnapshotDate is when the ranges embedded in the binary were
	// published (or last seen on a mirror).
	SnapshotDate time.Time
	// files are the embedded snapshot, one per URL.
	files []string
	kind  headerKind
}

// Providers returns the providers gatehouse knows, ordered by name. Each
// call returns new values.
func Providers() []Provider {
	return []Provider{
		{
			// https://www.cloudflare.com/ips/ and
			// developers.cloudflare.com/fundamentals/reference/http-headers/
			Name:         "cloudflare",
			URLs:         []string{"https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6"},
			Format:       FormatPlain,
			Header:       "Cf-Connecting-Ip",
			SnapshotDate: time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC),
			files:        []string{"providers/cloudflare-ips-v4.txt", "providers/cloudflare-ips-v6.txt"},
			kind:         headerAddr,
		},
		{
			// AWS documents ip-ranges.json, service CLOUDFRONT, as
			// the list of CloudFront's edge ranges for both families
			// (list-cloudfront-ips holds IPv4 only).
			// CloudFront-Viewer-Address is "address:port"; it must be
			// added to the origin request policy to be sent.
			Name:         "cloudfront",
			URLs:         []string{"https://ip-ranges.amazonaws.com/ip-ranges.json"},
			Format:       FormatAWSCloudFront,
			Header:       "Cloudfront-Viewer-Address",
			SnapshotDate: time.Date(2026, 8, 22, 15, 17, 5, 0, time.UTC),
			files:        []string{"providers/cloudfront-ip-ranges.json"},
			kind:         headerAddrPort,
		},
		{
			// https://www.fastly.com/documentation/reference/api/utils/public-ip-list/
			// No header: Fastly passes on a Fastly-Client-IP the client
			// sent itself ("if a client sets this header themselves, we
			// will use it"), so believing it would let any client through
			// any Fastly service name any address. Fastly appends the
			// address it got the request from to X-Forwarded-For, which
			// the walk from its edge reads.
			Name:         "fastly",
			URLs:         []string{"https://api.fastly.com/public-ip-list"},
			Format:       FormatFastlyJSON,
			SnapshotDate: time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC),
			files:        []string{"providers/fastly-public-ip-list.json"},
			kind:         headerAddr,
		},
	}
}

// ProviderNamed returns the provider called name, and whether there is
// one.
func ProviderNamed(name string) (Provider, bool) {
	for _, p := range Providers() {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// ProviderNames lists the names of Providers, for config messages.
func ProviderNames() []string {
	ps := Providers()
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names
}

// SnapshotPrefixes parses the ranges embedded in the binary.
func (p Provider) SnapshotPrefixes() ([]netip.Prefix, error) {
	var all []netip.Prefix
	for _, f := range p.files {
		b, err := snapshots.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s snapshot: %w", p.Name, err)
		}
		l, err := Parse(bytes.NewReader(b), p.Format, Limits{})
		if err != nil {
			return nil, fmt.Errorf("%s snapshot %s: %w", p.Name, f, err)
		}
		all = append(all, l.Prefixes...)
	}
	return all, nil
}

// Snapshot is the Set of the ranges embedded in the binary.
func (p Provider) Snapshot() (*Set, error) {
	ps, err := p.SnapshotPrefixes()
	if err != nil {
		return nil, err
	}
	return NewSet(ps), nil
}

// ClientIP reads the client address from a value of p's Header, strictly:
// one address (CF-Connecting-IP) or one address and
// port (CloudFront-Viewer-Address: "198.51.100.10:46532",
// "2001:db8::1:46532", unbracketed as CloudFront writes it, or
// "[2001:db8::1]:46532"), surrounding blanks ignored, no zone. It
// returns false for anything else, a list included: only the provider
// writes this header, so a second value means the client sent its own.
// IPv4-mapped addresses are unmapped. It does not allocate.
func (p Provider) ClientIP(v string) (netip.Addr, bool) {
	v = strings.TrimSpace(v)
	if p.kind == headerAddrPort {
		return parseAddrPort(v)
	}
	return parseBareAddr(v)
}

func parseBareAddr(v string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseAddrPort splits "addr:port" at the last colon; an IPv6 address
// without brackets is what is left of it.
func parseAddrPort(v string) (netip.Addr, bool) {
	i := strings.LastIndexByte(v, ':')
	if i <= 0 {
		return netip.Addr{}, false
	}
	host, port := v[:i], v[i+1:]
	if len(port) == 0 || len(port) > 5 {
		return netip.Addr{}, false
	}
	n := 0
	for j := 0; j < len(port); j++ {
		c := port[j]
		if c < '0' || c > '9' {
			return netip.Addr{}, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return netip.Addr{}, false
	}
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
		a, ok := parseBareAddr(host)
		if !ok || !a.Is6() {
			return netip.Addr{}, false
		}
		return a, true
	}
	return parseBareAddr(host)
}
