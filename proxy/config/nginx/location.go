package nginx

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"gatehouse/middleware/htpasswd"
	"gatehouse/proxy/config/nginx/conf"
	"gatehouse/rules/match"
)

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
		re, err := routeRegex(p)
		if err != nil {
			return "", nil, err
		}
		if mod == "~*" || match.CheckRouteRegex(re) != nil {
			// Routes ignore case: a case-sensitive nginx regex with
			// upper-case letters is written to match in any case.
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
	b.host.auth = t.auth(b.sc, b.server)
}

func authOn(sc scope) bool {
	return sc.authBasic != nil && sc.authFile != nil && len(sc.authBasic.Args) == 1 && sc.authBasic.Args[0] != "off"
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
