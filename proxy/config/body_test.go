package config

import (
	"strings"
	"testing"
	"time"
)

// TestBodyReadTimeout pins limits.body_read_timeout and its per-host
// override (slow request bodies): the default, the inheritance,
// and the refusal of an explicit 0, which would otherwise silently become
// the default instead of "no timeout".
func TestBodyReadTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		wantLimit time.Duration
		wantHost  time.Duration
	}{
		{name: "default", in: minimal, wantLimit: time.Minute, wantHost: time.Minute},
		{name: "host inherits the limit", in: minimal + "limits: {body_read_timeout: 5s}\n",
			wantLimit: 5 * time.Second, wantHost: 5 * time.Second},
		{name: "host overrides the limit", in: minimal + "    body_read_timeout: 2m\nlimits: {body_read_timeout: 5s}\n",
			wantLimit: 5 * time.Second, wantHost: 2 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("t.yaml", []byte(tc.in))
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tc.in, err)
			}
			if got := f.Limits.BodyReadTimeout.D(); got != tc.wantLimit {
				t.Errorf("limits.body_read_timeout = %v, want %v", got, tc.wantLimit)
			}
			if got := f.Hosts[0].BodyReadTimeout.D(); got != tc.wantHost {
				t.Errorf("hosts[0].body_read_timeout = %v, want %v", got, tc.wantHost)
			}
		})
	}
}

// TestBodyConfigErrors: every error names file:line and the field.
func TestBodyConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "explicit zero limit", in: minimal + "limits:\n  body_read_timeout: 0\n",
			wantErr: "t.yaml:5: limits.body_read_timeout: must be greater than 0; remove the key for the default (1m)"},
		{name: "explicit zero on a host", in: minimal + "    body_read_timeout: 0\n",
			wantErr: "t.yaml:4: hosts[0].body_read_timeout: must be greater than 0; remove the key to use limits.body_read_timeout"},
		{name: "null on a host", in: minimal + "    body_read_timeout:\n",
			wantErr: "t.yaml:4: hosts[0].body_read_timeout: must be greater than 0"},
		{name: "negative", in: minimal + "    body_read_timeout: -1s\n",
			wantErr: "t.yaml:4: hosts[0].body_read_timeout:"},
		{name: "not a duration", in: minimal + "limits: {body_read_timeout: slow}\n",
			wantErr: "t.yaml:4: limits.body_read_timeout:"},
		{name: "buffer_requests without max_body", in: minimal + "    buffer_requests: true\n",
			wantErr: "t.yaml:4: hosts[0].buffer_requests: needs max_body, which bounds what is buffered"},
		{name: "buffer_requests not a bool", in: minimal + "    buffer_requests: maybe\n",
			wantErr: "t.yaml:4: hosts[0].buffer_requests:"},
		{name: "typo is refused", in: minimal + "    buffer_request: true\n",
			wantErr: `t.yaml:4: hosts[0].buffer_request: unknown key (did you mean "buffer_requests"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("t.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
			}
		})
	}
	f, err := Parse("t.yaml", []byte(minimal+"    buffer_requests: true\n    max_body: 1MB\n"))
	if err != nil {
		t.Fatalf("Parse(buffer_requests with max_body) = %v", err)
	}
	if !f.Hosts[0].BufferRequests {
		t.Error("hosts[0].buffer_requests = false, want true")
	}
}
