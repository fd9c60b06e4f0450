package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// writeFile writes content to name in a new temporary directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// secretRefCases need no environment or files; FuzzSecretRef uses them
// as seeds.
var secretRefCases = []struct {
	name    string
	ref     string
	match   string // a candidate that must match; "" for errors
	wantErr string
}{
	{name: "sha256 form", ref: "sha256:" + sha256Hex("s3cret"), match: "s3cret"},
	{name: "sha256 upper-case hex", ref: "sha256:" + strings.ToUpper(sha256Hex("s3cret")), match: "s3cret"},

	{name: "empty", ref: "", wantErr: "empty secret; use env:NAME, file:PATH or sha256:HEX"},
	{name: "inline", ref: "hunter2", wantErr: "inline secrets are refused; use env:NAME, file:PATH or sha256:HEX"},
	{name: "inline with colon", ref: "bearer:hunter2", wantErr: "inline secrets are refused"},
	{name: "upper-case kind", ref: "ENV:TOKEN", wantErr: "inline secrets are refused"},
	{name: "short digest", ref: "sha256:abcd", wantErr: "sha256: want 64 hex digits, found 4 characters"},
	{name: "digest not hex", ref: "sha256:" + strings.Repeat("zz", 32), wantErr: "want 64 hex digits (0-9, a-f)"},
	{name: "env without name", ref: "env:", wantErr: `env:: "" is not an environment variable name`},
	{name: "env bad name", ref: "env:1TOKEN", wantErr: `"1TOKEN" is not an environment variable name`},
	{name: "env name with space", ref: "env: TOKEN", wantErr: `" TOKEN" is not an environment variable name`},
	{name: "file without path", ref: "file:", wantErr: "file:: empty path"},
}

func TestParseSecretRef(t *testing.T) {
	t.Parallel()
	for _, tc := range secretRefCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSecret(tc.ref)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSecret(%q) = %v, want error containing %q", tc.ref, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("ParseSecret(%q) error %q repeats the inline secret", tc.ref, err)
				}
				return
			}
			if err != nil || !s.Matches(tc.match) || s.Value() != "" || s.HasValue() || s.IsZero() {
				t.Fatalf("ParseSecret(%q) = Matches(%q) %v, Value %q, HasValue %v, IsZero %v, err %v; want a digest-only secret that matches",
					tc.ref, tc.match, s.Matches(tc.match), s.Value(), s.HasValue(), s.IsZero(), err)
			}
		})
	}
}

// TestParseSecretEnv changes the environment, so it does not run in
// parallel.
func TestParseSecretEnv(t *testing.T) {
	t.Setenv("GATEHOUSE_TEST_TOKEN", "tok-123")
	t.Setenv("GATEHOUSE_TEST_EMPTY", "")
	t.Setenv("GATEHOUSE_TEST_UNSET", "")
	os.Unsetenv("GATEHOUSE_TEST_UNSET") // t.Setenv restores it afterwards

	for _, tc := range []struct {
		name    string
		ref     string
		want    string
		wantErr string
	}{
		{name: "set", ref: "env:GATEHOUSE_TEST_TOKEN", want: "tok-123"},
		{name: "unset", ref: "env:GATEHOUSE_TEST_UNSET", wantErr: "env:GATEHOUSE_TEST_UNSET: environment variable is not set"},
		{name: "empty", ref: "env:GATEHOUSE_TEST_EMPTY", wantErr: "env:GATEHOUSE_TEST_EMPTY: environment variable is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSecret(tc.ref)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSecret(%q) = %v, want error containing %q", tc.ref, err, tc.wantErr)
				}
				return
			}
			if err != nil || s.Value() != tc.want || !s.Matches(tc.want) {
				t.Fatalf("ParseSecret(%q) = %q (matches %v), %v, want %q", tc.ref, s.Value(), s.Matches(tc.want), err, tc.want)
			}
		})
	}
}

func TestParseSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := strings.Repeat("x", maxSecretFile+1)
	for _, tc := range []struct {
		name    string
		content *string // nil: no file
		path    string  // overrides the path when set
		want    string
		wantErr string
	}{
		{name: "trailing newline trimmed", content: ptr("tok\n"), want: "tok"},
		{name: "several newlines trimmed", content: ptr("tok\n\n\n"), want: "tok"},
		{name: "CRLF trimmed", content: ptr("tok\r\n"), want: "tok"},
		{name: "inner newline kept", content: ptr("-----BEGIN-----\nabc\n-----END-----\n"), want: "-----BEGIN-----\nabc\n-----END-----"},
		{name: "leading space kept", content: ptr(" tok"), want: " tok"},
		{name: "empty file", content: ptr(""), wantErr: "file is empty"},
		{name: "only newlines", content: ptr("\n\n"), wantErr: "file is empty"},
		{name: "missing", content: nil, wantErr: "no such file or directory"},
		{name: "directory", path: dir, wantErr: "not a regular file"},
		{name: "too large", content: &big, wantErr: "larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "secret")
			if tc.content != nil {
				p = writeFile(t, "secret", *tc.content)
			}
			if tc.path != "" {
				p = tc.path
			}
			s, err := ParseSecret("file:" + p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "file:"+p+": ") {
					t.Fatalf("ParseSecret(file:%s) = %v, want error \"file:%s: ...%s...\"", p, err, p, tc.wantErr)
				}
				return
			}
			if err != nil || s.Value() != tc.want || !s.Matches(tc.want) || !s.HasValue() {
				t.Fatalf("ParseSecret(file:%s) = %q, %v, want %q", p, s.Value(), err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSecretMatches(t *testing.T) {
	t.Parallel()
	s, err := ParseSecret("file:" + writeFile(t, "tok", "right\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secret    Secret
		candidate string
		want      bool
	}{
		{s, "right", true},
		{s, "right\n", false},
		{s, "wrong", false},
		{s, "", false},
		{Secret{}, "", false},
		{Secret{}, "right", false},
	} {
		if got := tc.secret.Matches(tc.candidate); got != tc.want {
			t.Errorf("Secret(zero=%v).Matches(%q) = %v, want %v", tc.secret.IsZero(), tc.candidate, got, tc.want)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	t.Parallel()
	const value = "very-secret-value"
	s, err := ParseSecret("file:" + writeFile(t, "tok", value))
	if err != nil {
		t.Fatal(err)
	}
	tok := Token{Name: "ops", Token: s, Scopes: []string{"bans:read"}}

	var logBuf, jsonBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("token", "secret", s, "token", tok)
	slog.New(slog.NewJSONHandler(&jsonBuf, nil)).Info("token", "secret", s)
	j, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	text, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"String":      s.String(),
		"%v":          fmt.Sprintf("%v", s),
		"%s":          fmt.Sprintf("token %s", s),
		"%+v":         fmt.Sprintf("%+v", s),
		"%#v":         fmt.Sprintf("%#v", s),
		"%v token":    fmt.Sprintf("%v", tok),
		"%+v token":   fmt.Sprintf("%+v", tok),
		"%#v token":   fmt.Sprintf("%#v", tok),
		"%v pointer":  fmt.Sprintf("%v", &s),
		"slog text":   logBuf.String(),
		"slog json":   jsonBuf.String(),
		"json token":  string(j),
		"MarshalText": string(text),
	} {
		if strings.Contains(out, value) || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s of a Secret = %q, want [redacted] and no secret", name, out)
		}
	}
}

// TestAdminTokenHTTPSafe: a token HTTP would alter on the way (blanks at
// its ends, control bytes) could never match what a client sends, so
// check refuses it instead of serving with a token nobody can use.
func TestAdminTokenHTTPSafe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, data, want string }{
		{"trailing blanks", "ops-token  \n", "starts or ends with a space or tab"},
		{"leading tab", "\tops-token\n", "starts or ends with a space or tab"},
		{"escape byte", "ops\x1btoken\n", "control character (byte 3, 0x1b)"},
		{"inner line", "ops\ntoken\n", "control character (byte 3, 0x0a)"},
	} {
		path := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Parse("t.yaml", []byte("admin:\n  tokens:\n    - {name: ops, token: \"file:"+path+"\", scopes: [ui]}\n"))
		if err == nil || !strings.Contains(err.Error(), "t.yaml:3: admin.tokens[0].token: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want admin.tokens[0].token: …%s", tc.name, err, tc.want)
		}
	}
	if err := CheckBearerToken("aGVsbG8gd29ybGQ+/=="); err != nil {
		t.Errorf("CheckBearerToken(base64) = %v", err)
	}
}
