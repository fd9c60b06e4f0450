package nginx

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"gatehouse/middleware/htpasswd"
	"gatehouse/proxy/config/nginx/conf"
	"gatehouse/rules/match"
)

// probeLocation recognises a location that refuses every request (deny
// all, return 403/404/444) and carries its path over to probes.paths. It
// reports whether l was such a location.
func (t *translator) probeLocation(l *conf.Directive, mod, p string, b *hostBuild) bool {
	status := 0
	for _, d := range l.Block {
		switch {
		case d.Name == "deny" && len(d.Args) == 1 && d.Args[0] == "all":
			status = cmp0(status, 403)
		case d.Name == "return" && (len(d.Args) == 1 || len(d.Args) == 2) &&
			(d.Args[0] == "403" || d.Args[0] == "404" || d.Args[0] == "444"):
			status = cmp0(status, atoi(d.Args[0]))
		case d.Name == "allow" && !(len(d.Args) == 1 && d.Args[0] == "all"):
			return false // an address restriction, not a probe rule
		}
	}
	if status == 0 {
		return false
	}
	if (mod == "" || mod == "^~") && p == "/" {
		t.find(l, "nginx refused every request to %s; gatehouse has no rule that closes a whole host", b.label)
		t.doneTree(l)
		return true
	}
	pat, err := probePattern(mod, p)
	if err != nil {
		t.find(l, "%v", err)
		t.doneTree(l)
		return true
	}
	t.doneTree(l)
	if t.out.probes == nil {
		t.out.probes = &probesOut{}
	}
	t.out.probes.paths = appendItem(t.out.probes.paths, pat, l)
	if t.probeStatus == nil {
		t.probeStatus = map[int]bool{}
	}
	if status == 444 {
		status = 404 // closing the connection: the nearest is "nothing here"
	}
	t.probeStatus[status] = true
	t.out.probes.where = append(t.out.probes.where, b.label)
	return true
}

// cmp0 returns the first non-zero status: nginx's access phase (deny)
// runs after rewrite (return), but either way the first rule to answer
// is what a client sees; here both just mean "refused".
func cmp0(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// probePattern turns a location into a probes.paths pattern with the same
// reach. Literal paths are lower-cased (probes ignore case); prefix
// locations match raw bytes in nginx, so they become "/prefix*".
func probePattern(mod, p string) (string, error) {
	var pat string
	switch mod {
	case "=":
		pat = strings.ToLower(p)
	case "", "^~":
		pat = strings.ToLower(p) + "*"
	case "~", "~*":
		re, err := pcreToRE2(p)
		if err != nil {
			return "", err
		}
		if mod == "~*" || hasUpperLiteral(re) {
			re = "(?i)" + re
		}
		pat = "re:" + re
	default:
		return "", fmt.Errorf("location modifier %q", mod)
	}
	if _, err := match.CompileProbes(match.ProbeConfig{Paths: []string{pat}}); err != nil {
		if strings.HasPrefix(pat, "re:") {
			return "", fmt.Errorf("probe pattern %q: %v", pat, unwrapAll(err))
		}
		// A literal gatehouse would refuse (not canonical): as an
		// anchored regex it keeps nginx's meaning.
		re := "re:^" + regexp.QuoteMeta(strings.TrimSuffix(pat, "*"))
		if mod == "=" {
			re += "$"
		}
		if _, err2 := match.CompileProbes(match.ProbeConfig{Paths: []string{re}}); err2 != nil {
			return "", fmt.Errorf("probe pattern %q: %v", pat, unwrapAll(err))
		}
		pat = re
	}
	return pat, nil
}

func unwrapAll(err error) error {
	for {
		type unwrapper interface{ Unwrap() error }
		u, ok := err.(unwrapper)
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// pcreToRE2 checks that an nginx (PCRE) regular expression means the same
// in Go's RE2 syntax. The one lookahead configs commonly use,
// "(?!well-known)" after "/\.", is dropped: gatehouse never treats
// /.well-known/ as a probe.
func pcreToRE2(expr string) (string, error) {
	for _, la := range []string{`(?!well-known)`, `(?!well-known/)`, `(?!well-known\/)`} {
		expr = strings.ReplaceAll(expr, la, "")
	}
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		return "", fmt.Errorf("regular expression %q uses PCRE syntax Go's RE2 lacks (lookaround, backreferences, possessive quantifiers): %v", expr, err)
	}
	return expr, nil
}

// hasUpperLiteral reports whether a valid expression has upper-case
// letters in its literals.
func hasUpperLiteral(expr string) bool {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return false
	}
	var walk func(*syntax.Regexp) bool
	walk = func(r *syntax.Regexp) bool {
		if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 {
			for _, c := range r.Rune {
				if 'A' <= c && c <= 'Z' {
					return true
				}
			}
		}
		return slices.ContainsFunc(r.Sub, walk)
	}
	return walk(re)
}

// extPattern recognises the usual media-location expressions
// (\.(jpg|png|mp4)$, .*\.(?:gif|webp)$, \.mp4$) and returns their
// extensions as "*.ext" patterns.
var extPattern = regexp.MustCompile(`^\^?(?:\.\*|/?\.\*)?\\\.(?:\((?:\?:)?([A-Za-z0-9|]+)\)|([A-Za-z0-9]+))\$$`)

func extensions(expr string) []string {
	m := extPattern.FindStringSubmatch(expr)
	if m == nil {
		return nil
	}
	list := m[1]
	if list == "" {
		list = m[2]
	}
	var out []string
	for _, e := range strings.Split(list, "|") {
		if e == "" {
			return nil
		}
		out = append(out, "*."+strings.ToLower(e))
	}
	return out
}

// pathPattern turns a location into a hotlink/signed-links path pattern.
func pathPattern(mod, p string) (string, []string, error) {
	switch mod {
	case "=":
		return p, nil, nil
	case "", "^~":
		if p == "/" || strings.HasSuffix(p, "/") {
			return p, nil, nil
		}
		return p + "*", nil, nil
	case "~", "~*":
		if exts := extensions(p); exts != nil {
			return "", exts, nil
		}
		re, err := pcreToRE2(p)
		if err != nil {
			return "", nil, err
		}
		if mod == "~*" {
			re = "(?i)" + re
		}
		return "re:" + re, nil, nil
	}
	return "", nil, fmt.Errorf("location modifier %q", mod)
}

// serverAuth handles auth_basic in force at server level (set there or
// inherited from http): the whole host needs a login.
func (t *translator) serverAuth(b *hostBuild) {
	if !authOn(b.sc) {
		if b.sc.authBasic != nil {
			t.done(b.sc.authBasic)
		}
		return
	}
	t.setAuth(b, b.sc, "/", b.server)
}

func authOn(sc scope) bool {
	return sc.authBasic != nil && sc.authFile != nil && len(sc.authBasic.Args) == 1 && sc.authBasic.Args[0] != "off"
}

// locationAuth handles an auth_basic or auth_basic_user_file written in
// location l.
func (t *translator) locationAuth(l *conf.Directive, mod, p string, parent, sc scope, b *hostBuild) {
	if sc.authBasic == parent.authBasic && sc.authFile == parent.authFile {
		return // nothing of its own
	}
	switch {
	case !authOn(sc) && authOn(parent):
		t.find(sc.authBasic, "gatehouse cannot exempt a path from a host's basic auth: %s stays protected", p)
		return
	case !authOn(sc):
		if sc.authBasic != nil {
			t.done(sc.authBasic)
		}
		return
	}
	switch mod {
	case "", "^~", "=":
	default:
		t.find(sc.authBasic, "basic auth on a regular-expression location: gatehouse protects path prefixes (basic_auth.paths)")
		return
	}
	if mod != "=" && p != "/" && !strings.HasSuffix(p, "/") {
		t.find(l, "nginx's prefix %s also covers %s… names such as %sx; gatehouse's basic_auth.paths %s covers %s and %s/… only", p, p, p, p, p, p)
	}
	t.setAuth(b, sc, p, l)
}

// setAuth adds path p (protected by the auth in force in sc) to the
// host's basic_auth.
func (t *translator) setAuth(b *hostBuild, sc scope, p string, src *conf.Directive) {
	realm := sc.authBasic.Args[0]
	file := sc.authFile
	if len(file.Args) != 1 || strings.Contains(file.Args[0], "$") || strings.Contains(realm, "$") {
		t.find(file, "basic auth with variables: gatehouse needs a fixed realm and file")
		return
	}
	if sc.satisfy != nil && len(sc.satisfy.Args) == 1 && sc.satisfy.Args[0] == "any" {
		t.find(sc.satisfy, "satisfy any: gatehouse asks every client for a login, whatever its address")
	} else if sc.satisfy != nil {
		t.done(sc.satisfy)
	}
	htfile := t.abs(file.Args[0])
	h := b.host
	switch a := h.auth; {
	case a == nil:
		h.auth = &authOut{realm: realm, file: htfile, src: []*conf.Directive{src}}
		if p != "/" {
			h.auth.paths = []string{p}
		}
		t.checkHtpasswd(file, htfile)
	case a.realm != realm || a.file != htfile:
		t.find(sc.authBasic, "gatehouse has one basic auth per host (realm %q, %s); this one differs", a.realm, a.file)
		return
	case a.paths == nil:
		// the whole host is protected already
	case p == "/":
		a.paths = nil
		a.src = append(a.src, src)
	default:
		if !slices.Contains(a.paths, p) {
			a.paths = append(a.paths, p)
			a.src = append(a.src, src)
		}
	}
	t.done(sc.authBasic, file)
}

// hotlink handles if ($invalid_referer) { … } at server (loc nil) or
// location level.
func (t *translator) hotlink(ifd *conf.Directive, sc scope, loc *conf.Directive, b *hostBuild) {
	ref := sc.referers
	if ref == nil {
		t.doneTree(ifd) // $invalid_referer is empty without valid_referers
		return
	}
	action, err := readHotlinkAction(ifd)
	if err != nil {
		t.find(ifd, "%v", err)
		t.doneTree(ifd)
		return
	}
	// Whatever happens below, the if is accounted for.
	t.doneTree(ifd)
	var paths []string
	if loc == nil {
		paths = []string{"/"}
	} else {
		mod, p := locationArgs(loc)
		pat, exts, err := pathPattern(mod, p)
		if err != nil {
			t.find(loc, "%v", err)
			return
		}
		if pat != "" {
			paths = []string{pat}
		}
		paths = append(paths, exts...)
	}
	for _, pat := range paths {
		if _, err := match.CompileHotlink(match.HotlinkConfig{Paths: []string{pat}, Allow: []string{"none"}}); err != nil {
			t.find(loc, "hotlink path %q: %v", pat, unwrapAll(err))
			return
		}
	}
	var allow []string
	for _, a := range ref.Args {
		var add []string
		switch {
		case a == "server_names":
			for _, n := range b.names {
				add = append(add, n.value)
			}
		case strings.HasPrefix(a, "~"):
			add = []string{"re:" + a[1:]}
		default:
			add = []string{a}
		}
		for _, v := range add {
			if _, err := match.CompileHotlink(match.HotlinkConfig{Paths: []string{"/protected/"}, Allow: []string{v}}); err != nil {
				t.find(ref, "referer %q: %v", v, unwrapAll(err))
				return
			}
			if !slices.Contains(allow, v) {
				allow = append(allow, v)
			}
		}
	}
	if len(allow) == 0 {
		t.find(ref, "valid_referers allows nothing")
		return
	}
	hl := &hotlinkOut{paths: paths, allow: allow, action: action, src: []*conf.Directive{ref, ifd}}
	h := b.host
	switch o := h.hotlink; {
	case o == nil:
		h.hotlink = hl
	case slices.Equal(o.allow, hl.allow) && o.action == hl.action:
		for _, p := range paths {
			if !slices.Contains(o.paths, p) {
				o.paths = append(o.paths, p)
			}
		}
		o.src = append(o.src, ref, ifd)
	default:
		t.find(ifd, "gatehouse has one hotlink rule per host (%s); this one allows other referers or answers differently", o.src[0].Pos())
		return
	}
	t.done(ref)
	t.doneTree(ifd)
}

// readHotlinkAction reads the answer inside if ($invalid_referer) { … }.
func readHotlinkAction(ifd *conf.Directive) (hotlinkAction, error) {
	if len(ifd.Block) != 1 {
		return hotlinkAction{}, fmt.Errorf("gatehouse refuses a hotlink with a status or a redirect, nothing more")
	}
	d := ifd.Block[0]
	switch d.Name {
	case "return":
		if len(d.Args) == 0 {
			break
		}
		code := atoi(d.Args[0])
		switch {
		case len(d.Args) == 1 && (code == 403 || code == 404 || code == 410):
			return hotlinkAction{status: code}, nil
		case len(d.Args) == 1 && code == 444:
			return hotlinkAction{status: 403, note: "nginx closed the connection (444); gatehouse answers 403"}, nil
		case len(d.Args) == 2 && (code == 301 || code == 302 || code == 303 || code == 307 || code == 308):
			return redirectAction(d.Args[1])
		case len(d.Args) == 1 && strings.HasPrefix(d.Args[0], "http"):
			return redirectAction(d.Args[0])
		}
	case "rewrite":
		if len(d.Args) >= 2 {
			return redirectAction(d.Args[1])
		}
	}
	return hotlinkAction{}, fmt.Errorf("%s: gatehouse answers a hotlink with 403, 404, 410 or a redirect", d)
}

func redirectAction(url string) (hotlinkAction, error) {
	if strings.Contains(url, "$") || !(strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")) {
		return hotlinkAction{}, fmt.Errorf("redirect to %q: gatehouse redirects hotlinks to one absolute URL", url)
	}
	return hotlinkAction{redirect: url}, nil
}

// secureLink handles secure_link (and secure_link_md5/secret) in a
// location: nginx's MD5 links cannot be verified by gatehouse, so it
// writes a signed_links block to start from and warns.
func (t *translator) secureLink(d, l *conf.Directive, mod, p string, b *hostBuild) {
	if d.Name != "secure_link" && d.Name != "secure_link_secret" {
		t.done(d) // secure_link_md5 goes with secure_link
		return
	}
	t.find(d, "nginx's MD5 secure links cannot be carried over: links signed for nginx stop working; "+
		"gatehouse signs its own (hosts[].signed_links, gatehouse sign link), written for %s with key env:GATEHOUSE_LINK_KEY", p)
	pat := p
	if mod != "" && mod != "^~" && mod != "=" {
		pat = "/" // a regex location: protect the host, narrow it by hand
	}
	h := b.host
	if h.signed == nil {
		h.signed = &signedOut{src: d}
	}
	if !slices.Contains(h.signed.paths, pat) {
		h.signed.paths = append(h.signed.paths, pat)
	}
}

// checkHtpasswd reports an htpasswd file gatehouse would refuse (DES or
// plain-text lines, which nginx accepts), so the user learns it before
// gatehouse check does.
func (t *translator) checkHtpasswd(d *conf.Directive, file string) {
	data, err := fs.ReadFile(t.c.FS, conf.FSPath(file))
	if err != nil {
		t.find(d, "cannot read %s: %v", file, unwrapAll(err))
		return
	}
	if _, err := htpasswd.Parse(file, bytes.NewReader(data)); err != nil {
		t.find(d, "gatehouse refuses this htpasswd file: %v", err)
	}
}
