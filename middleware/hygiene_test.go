package middleware

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"gatehouse/rules"
)

// hygieneChain is WithScope → ClientIP → Hygiene → a handler that records
// the request it got.
func hygieneChain(t testing.TB, cfg HygieneConfig) (http.Handler, **http.Request) {
	t.Helper()
	ip, err := ClientIP(ClientIPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	hy, err := Hygiene(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	return WithScope(ip(hy(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		if ScopeFrom(r).RequestHost == "" {
			t.Error("Hygiene passed a request without RequestHost")
		}
		w.WriteHeader(http.StatusNoContent)
	})))), &got
}

func TestHygieneRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    func() *http.Request
		want   int
		closes bool
	}{
		{name: "clean", want: 204, req: func() *http.Request { return httptest.NewRequest("GET", "http://app.example.com/a/b", nil) }},
		{name: "CONNECT", want: 400, closes: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.Method = "CONNECT"
			return r
		}},
		{name: "PRI", want: 400, closes: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.Method = "PRI"
			return r
		}},
		{name: "HTTP/1.2", want: 400, closes: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.ProtoMinor = 2
			return r
		}},
		{name: "bad host", want: 400, closes: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.Host = "a..b"
			return r
		}},
		{name: "absolute form with user info", want: 400, closes: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.RequestURI = "http://u:p@app.example.com/"
			return r
		}},
		{name: "HTTP/2 host header disagrees", want: 400, req: func() *http.Request {
			r := httptest.NewRequest("GET", "https://app.example.com/", nil)
			r.ProtoMajor, r.ProtoMinor, r.Proto = 2, 0, "HTTP/2.0"
			r.Header.Set("Host", "other.example.com")
			return r
		}},
		{name: "HTTP/2 host header agrees", want: 204, req: func() *http.Request {
			r := httptest.NewRequest("GET", "https://app.example.com/", nil)
			r.ProtoMajor, r.ProtoMinor, r.Proto = 2, 0, "HTTP/2.0"
			r.Header.Set("Host", "APP.example.com.")
			return r
		}},
		{name: "SNI differs", want: 421, closes: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "https://app.example.com/", nil)
			r.TLS = &tls.ConnectionState{ServerName: "other.example.com"}
			return r
		}},
		{name: "SNI matches", want: 204, req: func() *http.Request {
			r := httptest.NewRequest("GET", "https://app.example.com/", nil)
			r.TLS = &tls.ConnectionState{ServerName: "App.Example.com"}
			return r
		}},
		{name: "no SNI for a name", want: 421, closes: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "https://app.example.com/", nil)
			r.TLS = &tls.ConnectionState{}
			return r
		}},
		{name: "no SNI for an IP", want: 204, req: func() *http.Request {
			r := httptest.NewRequest("GET", "https://192.0.2.1/", nil)
			r.TLS = &tls.ConnectionState{}
			return r
		}},
		// An h2c offer is ignored (RFC 9110 §7.8), not refused: Java's
		// HttpClient sends one on every first http:// request.
		{name: "h2c", want: 204, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
			r.Header.Set("Upgrade", "websocket, H2C")
			return r
		}},
		{name: "two Authorization", want: 400, closes: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.Header["Authorization"] = []string{"Basic YTpi", "Basic YzpkCg=="}
			return r
		}},
		{name: "method with a space (HTTP/2 :method)", want: 400, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.Method, r.ProtoMajor, r.ProtoMinor = "GE T", 2, 0
			return r
		}},
		{name: "method with a quote", want: 400, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.Method, r.ProtoMajor, r.ProtoMinor = `GET"`, 2, 0
			return r
		}},
		{name: "TRACE", want: 405, closes: true, req: func() *http.Request {
			return httptest.NewRequest("TRACE", "http://app.example.com/", nil)
		}},
		{name: "extension method", want: 204, req: func() *http.Request {
			return httptest.NewRequest("PROPFIND", "http://app.example.com/", nil)
		}},
		{name: "encoded slash", want: 400, closes: true, req: func() *http.Request {
			return httptest.NewRequest("GET", "http://app.example.com/a%2Fb", nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A chain per case: its recorder of the passed request is
			// not shared between parallel cases.
			h, _ := hygieneChain(t, HygieneConfig{StrictSNI: true})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tc.req())
			if w.Code != tc.want {
				t.Errorf("status = %d, want %d", w.Code, tc.want)
			}
			if got := w.Header().Get("Connection") == "close"; got != tc.closes {
				t.Errorf("Connection: close = %v, want %v", got, tc.closes)
			}
		})
	}
}

func TestHygieneStripsHeaders(t *testing.T) {
	t.Parallel()
	h, got := hygieneChain(t, HygieneConfig{UserHeaders: []string{"Remote-User"}})
	r := httptest.NewRequest("POST", "http://app.example.com/", strings.NewReader("x"))
	keep := map[string]string{
		"X-Forwarded-For": "203.0.113.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "a.example",
		"Accept": "*/*", "X-Request-Id": "42", "Proxy-Authorization": "Basic YTpi", "Remote-Addr": "kept",
		"Xforwarded-For": "a different name", "X-Forwardedfor": "kept",
		"Cfg-Mode": "not a CDN's", "Cf": "kept", "Fastlyish": "kept", "Cdn-Loops": "kept", "Cloudfront": "kept",
	}
	drop := []string{
		"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-User", "X-Real-Ip", "Forwarded",
		"X-Original-Url", "X-Rewrite-Url", "X-Middleware-Subrequest", "Proxy", "True-Client-Ip",
		"X-Client-Ip", "Remote-User", "Remote_user", "remote.user", "X_forwarded_for", "X.Forwarded.For",
		"x-forwarded_proto", "X_Real_Ip", "X-Forwarded-" + strings.Repeat("Long", 30),
		// client identity and method-override headers.
		"Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Cluster-Client-Ip", "X-Originating-Ip",
		"X-Remote-Ip", "X-Remote-Addr", "Forwarded-For", "X-Forwarded", "X-Proxyuser-Ip", "X-Webauth-User",
		"X-Auth-Request-User", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
		"X_HTTP_Method_Override", "cf.connecting.ip", "X-WEBAUTH-USER",
		// the verified client certificate, which only gatehouse sets.
		"X-Client-Cert-Verify", "X-Client-Cert-Subject", "X-Client-Cert-Issuer", "X-Client-Cert-Serial",
		"X-Client-Cert-Fingerprint", "X_Client_Cert_Subject", "x.client.cert.verify",
		// what only a CDN sends, from a peer that is not one.
		"Cf-Ipcountry", "Cf-Visitor", "Cf-Access-Authenticated-User-Email", "Cf-Access-Jwt-Assertion",
		"CF_IPCOUNTRY", "Cloudfront-Viewer-Country", "Cloudfront-Forwarded-Proto", "cloudfront.viewer.country",
		"Fastly-Ssl", "Fastly-Orig-Accept-Encoding", "Cdn-Loop", "CDN_LOOP",
	}
	for _, k := range ClientIdentityHeaders {
		drop = append(drop, http.CanonicalHeaderKey(k))
	}
	for k, v := range keep {
		r.Header[k] = []string{v}
	}
	for _, k := range drop {
		r.Header[k] = []string{"spoofed"}
	}
	r.Trailer = http.Header{"X-Forwarded-For": nil}
	h.ServeHTTP(httptest.NewRecorder(), r)
	if *got == nil {
		t.Fatal("request refused, want it passed")
	}
	for k, v := range keep {
		if g := (*got).Header[k]; len(g) != 1 || g[0] != v {
			t.Errorf("header %s = %q, want [%q]", k, g, v)
		}
	}
	for _, k := range drop {
		if g, ok := (*got).Header[k]; ok {
			t.Errorf("header %s = %q, want it removed", k, g)
		}
	}
	if (*got).Trailer != nil {
		t.Errorf("Trailer = %v, want nil", (*got).Trailer)
	}
}

// TestHygienePassClient pins the opt-in: a host's pass_client list
// keeps those identity headers for that host only, in every spelling.
func TestHygienePassClient(t *testing.T) {
	t.Parallel()
	h, got := hygieneChain(t, HygieneConfig{UserHeaders: []string{"Remote-User"}, PassClient: func(host, name string) bool {
		return host == "cdn.example.com" && (name == "cf-connecting-ip" || name == "remote-user")
	}})
	for _, tc := range []struct {
		host string
		pass bool
	}{{"cdn.example.com", true}, {"app.example.com", false}} {
		r := httptest.NewRequest("GET", "http://"+tc.host+"/", nil)
		r.Header["Cf_connecting_ip"] = []string{"198.51.100.7"}
		r.Header["Remote-User"] = []string{"root"}
		r.Header["X-Http-Method-Override"] = []string{"DELETE"}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if *got == nil {
			t.Fatalf("%s: request refused, want it passed", tc.host)
		}
		if _, ok := (*got).Header["Cf_connecting_ip"]; ok != tc.pass {
			t.Errorf("%s: Cf_connecting_ip kept = %v, want %v", tc.host, ok, tc.pass)
		}
		if _, ok := (*got).Header["Remote-User"]; ok {
			t.Errorf("%s: Remote-User kept, want it removed: a user header is never passed", tc.host)
		}
		if _, ok := (*got).Header["X-Http-Method-Override"]; ok {
			t.Errorf("%s: X-Http-Method-Override kept, want it removed", tc.host)
		}
	}
}

// TestHygieneKeepsCDNHeadersFromTrustedProxies: what a CDN writes passes
// when the peer is a trusted proxy (the CDN, or a balancer behind it).
func TestHygieneKeepsCDNHeadersFromTrustedProxies(t *testing.T) {
	t.Parallel()
	ip, err := ClientIP(ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	hy, err := Hygiene(HygieneConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	h := WithScope(ip(hy(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r }))))
	for _, tc := range []struct {
		remote string
		kept   bool
	}{{"10.1.2.3:5000", true}, {"198.51.100.9:5000", false}} {
		got = nil
		r := httptest.NewRequest("GET", "http://app.example.com/", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("Cf-Ipcountry", "DE")
		r.Header.Set("Cloudfront-Viewer-Country", "DE")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got == nil {
			t.Fatalf("from %s: refused", tc.remote)
		}
		if kept := got.Header.Get("Cf-Ipcountry") == "DE" && got.Header.Get("Cloudfront-Viewer-Country") == "DE"; kept != tc.kept {
			t.Errorf("from %s: CDN headers kept %v, want %v", tc.remote, kept, tc.kept)
		}
	}
}

func TestHygieneBadUserHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, header, wantErr string
	}{
		{"space", "Remote User", "not a valid field name"},
		{"too long", strings.Repeat("X", 80), "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Hygiene(HygieneConfig{UserHeaders: []string{tc.header}}, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Hygiene(UserHeaders: %q) = %v, want an error containing %q", tc.header, err, tc.wantErr)
			}
		})
	}
}

// hostCases are CanonicalHost's table, shared with FuzzCanonicalHost as
// seeds.
var hostCases = []struct {
	in, host, port string
	ok             bool
}{
	// Names: case, port, one trailing dot.
	{"app.example.com", "app.example.com", "", true},
	{"App.Example.COM:8080", "app.example.com", "8080", true},
	{"app.example.com.", "app.example.com", "", true},
	{"localhost", "localhost", "", true},
	{"a-b.example", "a-b.example", "", true},
	// Addresses.
	{"192.0.2.1", "192.0.2.1", "", true},
	{"192.0.2.1:443", "192.0.2.1", "443", true},
	{"[2001:DB8::1]", "2001:db8::1", "", true},
	{"[2001:db8::1]:8443", "2001:db8::1", "8443", true},
	// Refused: empty, double dot, bad characters, label shape.
	{"", "", "", false},
	{".", "", "", false},
	{"app.example.com..", "", "", false},
	{"a..b", "", "", false},
	{"a_b.example", "", "", false},
	{"a b", "", "", false},
	{"user@app.example.com", "", "", false},
	{"-a.example", "", "", false},
	{"a-.example", "", "", false},
	{strings.Repeat("a", 64) + ".example", "", "", false},
	{strings.Repeat("a.", 127) + "ab", "", "", false},
	{"caf\xc3\xa9.example", "", "", false},
	// Refused: digit-only last labels that are no IPv4 address.
	{"127.1", "", "", false},
	{"0x7f.0.0.1", "", "", false},
	{"010.0.0.1", "", "", false},
	{"999.1.1.1", "", "", false},
	// Refused: ports, IPv6 forms.
	{"app.example.com:", "", "", false},
	{"app.example.com:65536", "", "", false},
	{"app.example.com:80:80", "", "", false},
	{"app.example.com:+80", "", "", false},
	{"2001:db8::1", "", "", false},
	{"[2001:db8::1", "", "", false},
	{"[fe80::1%25lo]", "", "", false},
	{"[192.0.2.1]", "", "", false},
	{"[::1]x", "", "", false},
}

func TestCanonicalHost(t *testing.T) {
	t.Parallel()
	for _, tc := range hostCases {
		host, port, ok := CanonicalHost(tc.in)
		if host != tc.host || port != tc.port || ok != tc.ok {
			t.Errorf("CanonicalHost(%q) = %q, %q, %v, want %q, %q, %v", tc.in, host, port, ok, tc.host, tc.port, tc.ok)
		}
	}
}

// FuzzCanonicalHost checks CanonicalHost's properties: an accepted host is
// lower case, has no port, dot at the end or brackets, is accepted again
// unchanged (idempotence), parses as netip does when it looks like an
// address, and its port round-trips.
func FuzzCanonicalHost(f *testing.F) {
	for _, tc := range hostCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		host, port, ok := CanonicalHost(in)
		if !ok {
			if host != "" || port != "" {
				t.Fatalf("CanonicalHost(%q) refused but returned %q, %q", in, host, port)
			}
			return
		}
		if host != strings.ToLower(host) || strings.HasSuffix(host, ".") || strings.ContainsAny(host, "[]@ _") {
			t.Fatalf("CanonicalHost(%q) = %q: not canonical", in, host)
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" || a.String() != host && !a.Is6() {
				t.Fatalf("CanonicalHost(%q) = %q: address not in netip's form", in, host)
			}
			if a.Is6() {
				host = "[" + host + "]"
			}
		}
		again, port2, ok2 := CanonicalHost(host)
		if a, err := netip.ParseAddr(again); err == nil && a.Is6() {
			again = "[" + again + "]"
		}
		if !ok2 || again != host || port2 != "" {
			t.Fatalf("CanonicalHost(%q) = %q, %v, want %q again", host, again, ok2, host)
		}
		if port != "" && !strings.HasSuffix(in, ":"+port) {
			t.Fatalf("CanonicalHost(%q) port %q is not the input's", in, port)
		}
	})
}

// FuzzXFFCombined pins that several X-Forwarded-For lines are read as one
// comma-separated list, in order: the resolver gives the same client for
// the lines as for their join, whatever the split.
func FuzzXFFCombined(f *testing.F) {
	// Seeds: one line, split lines, empty elements, ports, garbage, IPv6.
	f.Add("203.0.113.7", "10.0.0.1")
	f.Add("203.0.113.7, 10.0.0.2", "10.0.0.1")
	f.Add("", "10.0.0.1, ,")
	f.Add("198.51.100.1:5000", "[2001:db8::1]:443, 10.0.0.3")
	f.Add("garbage", "10.0.0.1")
	f.Add("10.0.0.9", "")
	res, err := NewClientIPResolver(ClientIPConfig{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/64"),
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		lines := []string{a, b}
		joined := []string{a + "," + b}
		c1, p1, t1 := res.Resolve("10.0.0.1:1234", lines)
		c2, p2, t2 := res.Resolve("10.0.0.1:1234", joined)
		if c1 != c2 || p1 != p2 || t1 != t2 {
			t.Fatalf("Resolve(%q) = %v, want %v as for %q", lines, c1, c2, joined)
		}
	})
}

// scopedRequest returns a typical request (a path of four segments, six
// headers) that went through WithScope and ClientIP, and Hygiene's
// handler in front of a handler that does nothing.
func scopedRequest(t testing.TB) (http.Handler, *http.Request) {
	t.Helper()
	r := httptest.NewRequest("GET", "http://app.example.com/static/css/v2/site.css", nil)
	r.RequestURI = "/static/css/v2/site.css" // origin form, as browsers send
	r.RemoteAddr = "203.0.113.7:50000"
	for k, v := range map[string]string{
		"User-Agent": "Mozilla/5.0", "Accept": "text/css,*/*;q=0.1", "Accept-Encoding": "gzip, br",
		"Accept-Language": "en", "Referer": "https://app.example.com/", "Cookie": "session=abc",
	} {
		r.Header.Set(k, v)
	}
	ip, err := ClientIP(ClientIPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var scoped *http.Request
	WithScope(ip(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { scoped = r }))).ServeHTTP(nil, r)
	hy, err := Hygiene(HygieneConfig{UserHeaders: []string{"Remote-User"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return hy(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})), scoped
}

// BenchmarkHygiene is the canonical view of a typical request: host,
// framing headers, header stripping and the path.
func BenchmarkHygiene(b *testing.B) {
	h, r := scopedRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(nil, r)
	}
}

// TestHygieneReportsMalformed: a 400 for a malformed path or
// request is an offence for the configured jail, a 421 and a clean request
// are not.
func TestHygieneReportsMalformed(t *testing.T) {
	t.Parallel()
	jails, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": {MaxRetry: 100}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := ClientIP(ClientIPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	hy, err := Hygiene(HygieneConfig{StrictSNI: true, Jail: "probes"}, jails, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := WithScope(ip(hy(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))))
	for _, tc := range []struct {
		name    string
		req     func() *http.Request
		offence bool
	}{
		{name: "encoded NUL", offence: true, req: func() *http.Request { return httptest.NewRequest("GET", "http://app.example.com/a%00", nil) }},
		{name: "above the root", offence: true, req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.RequestURI = "/../etc/passwd"
			return r
		}},
		{name: "encoded slash in traversal", offence: true, req: func() *http.Request {
			return httptest.NewRequest("GET", "http://app.example.com/..%2F..%2Fetc/passwd", nil)
		}},
		// Refused, but links on pages carry them as written: no offence.
		{name: "encoded slash", req: func() *http.Request {
			return httptest.NewRequest("GET", "http://app.example.com/tags/c%2Fc%2B%2B", nil)
		}},
		{name: "Latin-1 escape", req: func() *http.Request { return httptest.NewRequest("GET", "http://app.example.com/caf%E9.html", nil) }},
		{name: "three dots", req: func() *http.Request { return httptest.NewRequest("GET", "http://app.example.com/wiki/...", nil) }},
		{name: "NTFS stream", offence: true, req: func() *http.Request {
			return httptest.NewRequest("GET", "http://app.example.com/web.config::$DATA", nil)
		}},
		{name: "CONNECT", offence: true, req: func() *http.Request { return httptest.NewRequest("CONNECT", "http://app.example.com/", nil) }},
		{name: "clean", req: func() *http.Request { return httptest.NewRequest("GET", "http://app.example.com/a", nil) }},
		{name: "421 strict SNI", req: func() *http.Request {
			r := httptest.NewRequest("GET", "https://app.example.com/", nil)
			r.TLS = &tls.ConnectionState{ServerName: "other.example.com"}
			return r
		}},
	} {
		before := jails.Offences("probes")
		h.ServeHTTP(httptest.NewRecorder(), tc.req())
		if got := jails.Offences("probes") - before; got != map[bool]uint64{true: 1}[tc.offence] {
			t.Errorf("%s: %d offences, want offence %v", tc.name, got, tc.offence)
		}
	}
}

// TestHygieneIgnoresH2C: an offer to upgrade to h2c is dropped, with its
// settings, so nothing later can switch protocols; the request goes on as
// HTTP/1.1.
func TestHygieneIgnoresH2C(t *testing.T) {
	t.Parallel()
	h, got := hygieneChain(t, HygieneConfig{})
	r := httptest.NewRequest("GET", "http://app.example.com/", nil)
	r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
	r.Header.Set("Upgrade", "websocket, H2C")
	r.Header.Set("HTTP2-Settings", "AAMAAABkAAQAAP__")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if *got == nil {
		t.Fatal("request refused, want it passed")
	}
	for _, k := range []string{"Upgrade", "Http2-Settings"} {
		if v, ok := (*got).Header[k]; ok {
			t.Errorf("header %s = %q, want it removed", k, v)
		}
	}
}
