package config

import (
	"strings"
	"testing"
)

func TestProxyProtocolConfig(t *testing.T) {
	t.Parallel()
	const hosts = "hosts:\n  - match: [app.example.com]\n    upstreams: [http://127.0.0.1:3000]\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string // prefixes parsed
		wantErr    string   // "file:line: field: message" substring
		wantWarn   string
	}{
		{
			name: "balancers",
			yaml: "listen:\n  proxy_protocol: [10.0.0.0/8, 2001:db8::1]\n" + hosts,
			want: []string{"10.0.0.0/8", "2001:db8::1/128"},
		},
		{
			name:    "not a prefix",
			yaml:    "listen:\n  http: \":80\"\n  proxy_protocol: [10.0.0.1/8]\n" + hosts,
			wantErr: `gatehouse.yaml:3: listen.proxy_protocol[0]: invalid prefix "10.0.0.1/8": host bits are set`,
		},
		{
			name:    "empty entry",
			yaml:    "listen:\n  proxy_protocol: [10.0.0.0/8, \"\"]\n" + hosts,
			wantErr: "gatehouse.yaml:2: listen.proxy_protocol[1]:",
		},
		{
			name:    "no public listener",
			yaml:    "listen:\n  proxy_protocol: [10.0.0.0/8]\nwatch:\n  - name: ssh\n    journal: {unit: ssh.service}\n    jail: ssh\n    patterns: ['Failed password for .* from <HOST>']\njails:\n  ssh: {max: 5, window: 10m, ban: 1h}\n",
			wantErr: "gatehouse.yaml:2: listen.proxy_protocol: a config without hosts has no public listener",
		},
		{
			name:     "everyone",
			yaml:     "listen:\n  proxy_protocol: [0.0.0.0/0]\n" + hosts,
			want:     []string{"0.0.0.0/0"},
			wantWarn: "gatehouse.yaml:2: listen.proxy_protocol[0]: warning: 0.0.0.0/0 lets any peer",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("gatehouse.yaml", []byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			for _, p := range f.Listen.ProxyProtocol {
				got = append(got, p.Prefix.String())
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("listen.proxy_protocol = %q, want %q", got, tc.want)
			}
			var warns string
			if f.Warnings != nil {
				warns = f.Warnings.Error()
			}
			if tc.wantWarn == "" && warns != "" || !strings.Contains(warns, tc.wantWarn) {
				t.Errorf("warnings = %q, want %q", warns, tc.wantWarn)
			}
		})
	}
}
