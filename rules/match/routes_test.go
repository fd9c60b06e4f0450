package match

import (
	"strings"
	"testing"
)

func TestRouteChoice(t *testing.T) {
	routes := [][]string{
		0: {"/login"},
		1: {"/admin/"},
		2: {"/api/", "/v2*"},
		3: {"=/"},
		4: {"^~/static/"},
		5: {"*.php"},
		6: {`re:^/api/v[0-9]+/export`},
		7: {"/admin"}, // given after "/admin/": still owns "/admin" itself
		8: {"/admin/users/"},
		9: {"**/.git"},
	}
	tab, err := CompileRoutes(routes)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"/":                    3,
		"/login":               0,
		"/LOGIN":               0,
		"/login/x":             0,
		"/loginx":              -1, // segment boundary
		"/admin":               7,  // the exact prefix beats "/admin/"'s cover
		"/admin/":              1,
		"/admin/x":             1,
		"/Admin/Users/1":       8, // longest prefix
		"/admin/users":         8, // "/admin/users/" covers it
		"/api/x":               2,
		"/v2beta":              2,
		"/api/v1/export":       6, // a regex beats a prefix
		"/api/V1/export":       6, // regexes ignore case too
		"/static/x.php":        4, // "^~" stops the regex search
		"/x.php":               5,
		"/admin/x.php":         5,
		"/a/.git/config":       9,
		"/other":               -1,
		"/admin/users/x/y.php": 5,
	} {
		if got := tab.SelectPath(path); got != want {
			t.Errorf("SelectPath(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestRouteReadingsDisagree(t *testing.T) {
	tab, err := CompileRoutes([][]string{{"/admin/"}, {"=/healthz"}, {"re:^/private"}})
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]struct {
		route int
		ok    bool
	}{
		"/admin/x":              {0, true},
		"/ADMIN/x":              {0, true},
		"/healthz":              {1, true},
		"/%61dmin/x":            {0, false}, // raw reading: no route
		"/admin/../healthz":     {1, false}, // raw reading: the admin route
		"/admin./x":             {-1, false},
		"//evil/admin/":         {-1, false}, // the path after the authority
		"/public/caf%C3%A9":     {-1, true},
		"/admin/caf%C3%A9.txt":  {0, true},
		"/Private/x":            {2, true}, // a regex route ignores case too
		"/healthz;jsessionid=1": {1, true}, // every reader strips ;params
		"/admin;x/y":            {0, true},
		"/admin/..;/healthz":    {1, false}, // "..;" is ".." to Tomcat: the raw reading is the admin route
		"/PRIVATE./x":           {2, true},
	} {
		c, err := Canonical(raw)
		if err != nil {
			t.Fatalf("Canonical(%q): %v", raw, err)
		}
		route, ok := tab.Select(raw, c)
		if route != want.route || ok != want.ok {
			t.Errorf("Select(%q) = %d, %v; want %d, %v", raw, route, ok, want.route, want.ok)
		}
	}
}

func TestCompileRoutesErrors(t *testing.T) {
	for _, tc := range []struct {
		routes [][]string
		want   string
	}{
		{[][]string{{"/a"}, {"/A"}}, "routes[1].paths[0] \"/A\": already given at routes[0].paths[0]"},
		{[][]string{{"/a/"}, {"^~/a/"}}, "already given"},
		{[][]string{{"/media/*.mp4"}}, `re:(?i)^/media/.*\.mp4$`},
		{[][]string{{"admin"}}, "starts with"},
		{[][]string{{"re:("}}, "missing closing )"},
		{[][]string{{}}, "routes[0].paths: no paths"},
		{[][]string{{"/a//b"}}, "can never match"},
		{[][]string{{"re:^/Admin"}}, "write letters in lower case, or use (?i)"},
		{[][]string{{"re:^/[A-Z]+$"}}, "write letters in lower case"},
	} {
		_, err := CompileRoutes(tc.routes)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileRoutes(%q) = %v, want an error containing %q", tc.routes, err, tc.want)
		}
	}
}

func BenchmarkRouteSelect(b *testing.B) {
	var routes [][]string
	for i := range 50 {
		routes = append(routes, []string{"/section" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + "/"})
	}
	for _, re := range []string{`re:^/api/v[0-9]+/export`, `re:\.php$`, `re:^/files/[0-9a-f]{32}$`, `re:(?i)\.(jpg|png|gif)$`,
		`re:^/u/[^/]+/avatar$`, `re:^/old-[0-9]+/`, `re:/wp-`, `re:^/feed/?$`, `re:^/tags/[a-z-]+$`, `re:\.map$`} {
		routes = append(routes, []string{re})
	}
	tab, err := CompileRoutes(routes)
	if err != nil {
		b.Fatal(err)
	}
	raw := "/sectionk/articles/2024/some-long-slug"
	c, err := Canonical(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r, ok := tab.Select(raw, c); r != 10 || !ok {
			b.Fatal(r, ok)
		}
	}
}

func TestRequiredLiteral(t *testing.T) {
	for expr, want := range map[string]string{
		`\.php$`:               ".php",
		`^/api/v[0-9]+/export`: "/export",
		`(?i)\.(jpg|png)$`:     ".",
		`a|b`:                  "",
		`(?i)ſx`:               "",
	} {
		if got, _ := requiredLiteral(expr); got != want {
			t.Errorf("requiredLiteral(%q) = %q, want %q", expr, got, want)
		}
	}
	tab, err := CompileRoutes([][]string{{`re:(?i)\.PHP$`}, {`re:^/x/`}})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]int{"/a.php": 0, "/a.PhP": 0, "/X/1": 1, "/x/1": 1, "/Private": -1} {
		if got := tab.SelectPath(p); got != want {
			t.Errorf("SelectPath(%q) = %d, want %d", p, got, want)
		}
	}
}

// FuzzRouteSelect checks that route choice never panics, that Select
// agrees with SelectPath on the canonical path whenever it accepts, and
// that a prefix route's choice ignores ASCII case.
func FuzzRouteSelect(f *testing.F) {
	for _, s := range []string{"/", "/admin/x", "/ADMIN", "/admin/../healthz", "//evil/admin/", "/a.php", "/%61dmin", "/static/x.php", "/api/v1/export", "/admin./"} {
		f.Add(s)
	}
	tab, err := CompileRoutes([][]string{{"/admin/"}, {"=/healthz"}, {"^~/static/"}, {"*.php"}, {`re:^/api/v[0-9]+/`}, {"/api*"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Canonical(raw)
		if err != nil {
			return
		}
		route, ok := tab.Select(raw, c)
		if ok && route != tab.SelectPath(c.Path) {
			t.Fatalf("Select(%q) = %d, SelectPath(%q) = %d", raw, route, c.Path, tab.SelectPath(c.Path))
		}
		if up := strings.ToUpper(c.Path); tab.SelectPath(up) != tab.SelectPath(strings.ToLower(c.Path)) {
			t.Errorf("SelectPath(%q) = %d, SelectPath(lower) = %d", up, tab.SelectPath(up), tab.SelectPath(strings.ToLower(c.Path)))
		}
	})
}

func TestCheckRouteRegex(t *testing.T) {
	for expr, ok := range map[string]bool{
		`^/admin`: true, `(?i)^/Admin`: true, `/\.[^w]`: true, `^/[A-Za-z]+$`: true, `^/[^/]+$`: true, `\S+\.php$`: true,
		`^/Admin`: false, `^/[A-Z]`: false, `^/x(?-i:Y)`: false,
	} {
		if err := CheckRouteRegex(expr); (err == nil) != ok {
			t.Errorf("CheckRouteRegex(%q) = %v, want ok %v", expr, err, ok)
		}
	}
}

func TestAnchoredPrefix(t *testing.T) {
	for expr, want := range map[string]string{
		`^/api/v[0-9]+/export`: "/api/v", `^/feed/?$`: "/feed", `\.php$`: "", `(?i)^/x`: "", `^(/a|/b)`: "", `(?m)^/x`: "",
	} {
		if got := anchoredPrefix(expr); got != want {
			t.Errorf("anchoredPrefix(%q) = %q, want %q", expr, got, want)
		}
	}
}
