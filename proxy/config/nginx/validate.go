package nginx

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gatehouse/proxy/config/nginx/conf"
)

// InvalidError is an nginx config that nginx -t refuses: one of the
// directives the translator reads where nginx does not allow it, or with
// arguments nginx does not accept. Translating such a config would carry
// over rules nginx never ran.
type InvalidError struct {
	// Problems lists each refused directive, in reading order.
	Problems []Finding
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("nginx -t would refuse this config:")
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	return b.String()
}

// contexts says where nginx allows the directives the translator reads
// (the NGX_*_CONF flags of their modules). "server-if" and "location-if"
// are an if block in a server or a location.
var contexts = map[string][]string{
	"http":                  {"main"},
	"events":                {"main"},
	"server":                {"http"},
	"location":              {"server", "location"},
	"upstream":              {"http"},
	"limit_req_zone":        {"http"},
	"listen":                {"server"},
	"server_name":           {"server"},
	"proxy_pass":            {"location", "location-if", "limit_except"},
	"limit_req":             {"http", "server", "location"},
	"limit_req_status":      {"http", "server", "location"},
	"allow":                 {"http", "server", "location", "limit_except"},
	"deny":                  {"http", "server", "location", "limit_except"},
	"auth_basic":            {"http", "server", "location", "limit_except"},
	"auth_basic_user_file":  {"http", "server", "location", "limit_except"},
	"return":                {"server", "location", "server-if", "location-if"},
	"proxy_read_timeout":    {"http", "server", "location"},
	"proxy_connect_timeout": {"http", "server", "location"},
	"client_max_body_size":  {"http", "server", "location"},
}

type validator struct {
	zones    map[string]bool
	problems []Finding
}

func (v *validator) add(d *conf.Directive, format string, args ...any) {
	v.problems = append(v.problems, Finding{File: d.File, Line: d.Line, Directive: d.String(), Why: fmt.Sprintf(format, args...)})
}

// validate checks what nginx -t checks of the directives the translator
// reads; it returns an *InvalidError or nil.
func validate(ds []*conf.Directive) error {
	v := &validator{zones: map[string]bool{}}
	for _, d := range ds {
		if d.Name == "http" && d.IsBlock {
			for _, c := range d.Block {
				if c.Name == "limit_req_zone" {
					if name, _, ok := strings.Cut(zoneArg(c.Args), ":"); ok {
						v.zones[name] = true
					}
				}
			}
		}
	}
	v.block(ds, "main")
	if len(v.problems) == 0 {
		return nil
	}
	return &InvalidError{Problems: v.problems}
}

func zoneArg(args []string) string {
	for _, a := range args {
		if z, ok := strings.CutPrefix(a, "zone="); ok {
			return z
		}
	}
	return ""
}

func (v *validator) block(ds []*conf.Directive, ctx string) {
	seen := map[string]bool{} // location keys, for duplicates
	for _, d := range ds {
		if allowed, ok := contexts[d.Name]; ok && !slices.Contains(allowed, ctx) &&
			!(d.Name == "server" && !d.IsBlock && ctx == "upstream") {
			v.add(d, "%q directive is not allowed here", d.Name)
			continue
		}
		v.args(d, ctx)
		if d.Name == "location" && len(d.Args) > 0 {
			mod, p := locationArgs(d)
			key := p
			switch mod {
			case "=":
				key = "=" + p
			case "~", "~*", "@":
				key = ""
			}
			if key != "" && seen[key] {
				v.add(d, "duplicate location %q", p)
			}
			seen[key] = true
		}
		if !d.IsBlock {
			continue
		}
		switch d.Name {
		case "http", "server", "location", "upstream", "limit_except":
			v.block(d.Block, d.Name)
		case "if":
			v.block(d.Block, ctx+"-if")
		case "events":
		}
		// Other blocks (stream, mail, map, types …) hold directives
		// of other modules.
	}
}

func (v *validator) args(d *conf.Directive, ctx string) {
	switch d.Name {
	case "location":
		switch {
		case len(d.Args) == 2 && !slices.Contains([]string{"=", "~", "~*", "^~"}, d.Args[0]):
			v.add(d, "invalid location modifier %q", d.Args[0])
		case len(d.Args) < 1 || len(d.Args) > 2:
			v.add(d, "invalid number of arguments in \"location\" directive")
		}
	case "limit_req_zone":
		name, size, ok := strings.Cut(zoneArg(d.Args), ":")
		if !ok || name == "" {
			v.add(d, "\"limit_req_zone\" must have \"zone\" parameter with a name and a size")
		} else if _, err := nginxSize([]string{size}); err != nil || size == "0" {
			v.add(d, "invalid zone size %q", size)
		}
		for _, a := range d.Args[min(1, len(d.Args)):] {
			if r, ok := strings.CutPrefix(a, "rate="); ok {
				r = strings.TrimSuffix(strings.TrimSuffix(r, "r/s"), "r/m")
				if n, err := strconv.Atoi(r); err != nil || n <= 0 {
					v.add(d, "invalid rate %q", a)
				}
			}
		}
	case "limit_req":
		zone := ""
		for _, a := range d.Args {
			switch {
			case strings.HasPrefix(a, "zone="):
				zone = strings.TrimPrefix(a, "zone=")
			case strings.HasPrefix(a, "burst="):
				if n, err := strconv.Atoi(strings.TrimPrefix(a, "burst=")); err != nil || n < 0 {
					v.add(d, "invalid burst value %q", a)
				}
			case strings.HasPrefix(a, "delay="):
				if n, err := strconv.Atoi(strings.TrimPrefix(a, "delay=")); err != nil || n < 0 {
					v.add(d, "invalid delay value %q", a)
				}
			case a == "nodelay":
			default:
				v.add(d, "invalid parameter %q", a)
			}
		}
		switch {
		case zone == "":
			v.add(d, "\"limit_req\" must have \"zone\" parameter")
		case !v.zones[zone]:
			// nginx: zero size shared memory zone "NAME"
			v.add(d, "no limit_req_zone defines zone %q", zone)
		}
	case "limit_req_status":
		if n, err := strconv.Atoi(strings.Join(d.Args, " ")); err != nil || n < 400 || n > 599 {
			v.add(d, "value must be between 400 and 599")
		}
	case "allow", "deny":
		if len(d.Args) != 1 {
			v.add(d, "invalid number of arguments in %q directive", d.Name)
			return
		}
		if a := d.Args[0]; a != "all" && !strings.HasPrefix(a, "unix:") {
			if _, err := parseCIDR(a); err != nil {
				v.add(d, "invalid parameter %q", a)
			}
		}
	case "return":
		switch {
		case len(d.Args) < 1 || len(d.Args) > 2:
			v.add(d, "invalid number of arguments in \"return\" directive")
		case isDigits(d.Args[0]):
			if n, _ := strconv.Atoi(d.Args[0]); n > 999 {
				v.add(d, "invalid return code %q", d.Args[0])
			}
		case len(d.Args) == 2 || !(strings.HasPrefix(d.Args[0], "http://") || strings.HasPrefix(d.Args[0], "https://") || strings.HasPrefix(d.Args[0], "$scheme")):
			v.add(d, "invalid return code %q", d.Args[0])
		}
	case "proxy_read_timeout", "proxy_connect_timeout":
		if len(d.Args) != 1 || !validTime(d.Args[0]) {
			v.add(d, "invalid value")
		}
	case "client_max_body_size":
		if _, err := nginxSize(d.Args); err != nil {
			v.add(d, "invalid value")
		}
	case "server":
		if ctx != "upstream" || len(d.Args) == 0 {
			return
		}
		for _, a := range d.Args[1:] {
			if n, ok := strings.CutPrefix(a, "max_fails="); ok {
				if m, err := strconv.Atoi(n); err != nil || m < 0 {
					v.add(d, "invalid parameter %q", a)
				}
			}
			if t, ok := strings.CutPrefix(a, "fail_timeout="); ok && !validTime(t) {
				v.add(d, "invalid parameter %q", a)
			}
		}
	}
}

// validTime reports whether nginx reads s as a time: numbers, each with
// a unit (ms, s, m, h, d, w, M, y) or none for seconds at the end.
func validTime(s string) bool {
	if s == "" {
		return false
	}
	for s != "" {
		i := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return false
		}
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "ms"):
			s = s[2:]
		case s == "":
		case strings.ContainsRune("smhdwMy", rune(s[0])):
			s = s[1:]
		default:
			return false
		}
		s = strings.TrimLeft(s, " ")
	}
	return true
}
