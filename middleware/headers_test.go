package middleware

import (
	"net/http"
	"strings"
	"testing"
)

func TestHeaderPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     HeadersConfig
		in      http.Header
		want    http.Header
		wantErr string
	}{
		{
			name: "defaults",
			in:   http.Header{"Server": {"Apache/2.4.1"}, "X-Powered-By": {"PHP/5"}, "Content-Type": {"text/html"}},
			want: http.Header{"Content-Type": {"text/html"}, "X-Content-Type-Options": {"nosniff"},
				"Referrer-Policy": {"strict-origin-when-cross-origin"}},
		},
		{
			name: "set overrides upstream and default, empty turns a default off",
			cfg: HeadersConfig{Set: map[string]string{"strict-transport-security": "max-age=31536000",
				"Referrer-Policy": "no-referrer", "X-Content-Type-Options": ""}},
			in:   http.Header{"Referrer-Policy": {"unsafe-url"}, "X-Content-Type-Options": {"nosniff"}},
			want: http.Header{"Strict-Transport-Security": {"max-age=31536000"}, "Referrer-Policy": {"no-referrer"}},
		},
		{
			name: "remove extra, keep server when set",
			cfg:  HeadersConfig{Set: map[string]string{"Server": "gatehouse"}, Remove: []string{"x-aspnet-version"}},
			in:   http.Header{"Server": {"nginx"}, "X-Aspnet-Version": {"4.0"}},
			want: http.Header{"Server": {"gatehouse"}, "X-Content-Type-Options": {"nosniff"},
				"Referrer-Policy": {"strict-origin-when-cross-origin"}},
		},
		{name: "bad name", cfg: HeadersConfig{Set: map[string]string{"Bad Name": "x"}}, wantErr: `"Bad Name" is not a valid field name`},
		{name: "CRLF value", cfg: HeadersConfig{Set: map[string]string{"X-A": "a\r\nSet-Cookie: x"}}, wantErr: "control character"},
		{name: "bad remove", cfg: HeadersConfig{Remove: []string{"a:b"}}, wantErr: `"a:b" is not a valid field name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hp, err := NewHeaderPolicy(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewHeaderPolicy(%+v) error = %v, want %q", tc.cfg, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := tc.in.Clone()
			hp.Apply(h)
			if len(h) != len(tc.want) {
				t.Errorf("Apply(%v) = %v, want %v", tc.in, h, tc.want)
			}
			for k, v := range tc.want {
				if strings.Join(h[k], ",") != strings.Join(v, ",") {
					t.Errorf("Apply(%v)[%s] = %q, want %q", tc.in, k, h[k], v)
				}
			}
		})
	}
}
