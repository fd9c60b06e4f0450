package proxy

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// DemoApp is the small app behind the embedded demo config: it shows a
// newcomer what an upstream receives from gatehouse — the path, the
// client address and the forwarding headers.
func DemoApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// The demo app runs on loopback only; a failed write means the
		// client went away.
		_, _ = fmt.Fprintf(w, "Hello from the gatehouse demo app.\n\n%s %s %s\nHost: %s\n\nHeaders the app received:\n",
			r.Method, r.URL.RequestURI(), r.Proto, r.Host)
		names := make([]string, 0, len(r.Header))
		for name := range r.Header {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			_, _ = fmt.Fprintf(w, "  %s: %s\n", name, strings.Join(r.Header[name], ", "))
		}
	})
	return mux
}
