package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxSecretFile bounds what a file: reference may hold. PEM keys and
// tokens are a few kilobytes; a larger file is a wrong path.
const maxSecretFile = 1 << 20

const redacted = "[redacted]"

const secretHelp = "use env:NAME, file:PATH or sha256:HEX"

// Secret is a credential named in the config file by reference, never
// inline:
//
//   - env:NAME: the value of environment variable NAME, which must be set
//     and non-empty;
//   - file:PATH: the contents of the regular file PATH (relative paths are
//     relative to the working directory), trailing CR and LF removed; it
//     must not be empty;
//   - sha256:HEX: only the SHA-256 digest (64 hex digits) of a token, for
//     tokens the gateway checks but never sends; Value is then "".
//
// References are resolved once, when the config is loaded, and the SHA-256
// digest of the value is computed then, so Matches costs one hash. String,
// GoString, LogValue, MarshalText and MarshalJSON all print "[redacted]".
// The zero Secret means "not set": IsZero reports true and Matches is
// always false. A Secret is immutable and safe for concurrent use.
type Secret struct {
	value  string
	digest [sha256.Size]byte
	set    bool
}

// ParseSecret resolves a secret reference; see Secret. Error messages
// never contain the secret, nor an inline value that may be one.
func ParseSecret(ref string) (Secret, error) {
	kind, arg, ok := strings.Cut(ref, ":")
	switch {
	case ref == "":
		return Secret{}, fmt.Errorf("empty secret; %s", secretHelp)
	case !ok || (kind != "env" && kind != "file" && kind != "sha256"):
		return Secret{}, errors.New("inline secrets are refused; " + secretHelp)
	}
	var s Secret
	switch kind {
	case "env":
		if !isEnvName(arg) {
			return Secret{}, fmt.Errorf("env:%s: %q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", arg, arg)
		}
		v, set := os.LookupEnv(arg)
		if !set {
			return Secret{}, fmt.Errorf("env:%s: environment variable is not set", arg)
		}
		if v == "" {
			return Secret{}, fmt.Errorf("env:%s: environment variable is empty", arg)
		}
		s = Secret{value: v, digest: sha256.Sum256([]byte(v))}
	case "file":
		v, err := ReadSecretFile(arg)
		if err != nil {
			return Secret{}, fmt.Errorf("file:%s: %w", arg, err)
		}
		s = Secret{value: v, digest: sha256.Sum256([]byte(v))}
	case "sha256":
		if len(arg) != 2*sha256.Size {
			return Secret{}, fmt.Errorf("sha256: want 64 hex digits, found %d characters", len(arg))
		}
		if _, err := hex.Decode(s.digest[:], []byte(arg)); err != nil {
			return Secret{}, errors.New("sha256: want 64 hex digits (0-9, a-f)")
		}
	}
	s.set = true
	return s, nil
}

// ReadSecretFile reads a file: reference's file: its content less the
// trailing line ends. It refuses anything but a regular file of at most
// 1 MiB, so a FIFO or a device cannot block or flood a reload. Errors do
// not repeat the path.
func ReadSecretFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", pathErr(err)
	}
	if !fi.Mode().IsRegular() {
		return "", errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", pathErr(err)
	}
	defer f.Close() // read-only: a close error cannot lose data
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", pathErr(err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("larger than %d bytes", maxSecretFile)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", errors.New("file is empty")
	}
	return v, nil
}

// pathErr drops the op and path of an *fs.PathError, which the caller's
// message already names.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// UnmarshalYAML resolves a scalar reference with ParseSecret. The decoder
// reports any error with the file, line and field path.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	ref, err := scalarText(n, "a secret reference ("+secretHelp+")")
	if err != nil {
		return err
	}
	v, err := ParseSecret(ref)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// IsZero reports whether the secret was not set.
func (s Secret) IsZero() bool { return !s.set }

// HasValue reports whether Value returns the secret itself: true for the
// env: and file: forms, false for sha256: and for the zero Secret.
func (s Secret) HasValue() bool { return s.value != "" }

// Value returns the resolved secret, or "" for the sha256: form and the
// zero Secret. Never log it.
func (s Secret) Value() string { return s.value }

// Matches reports whether candidate is the secret, comparing SHA-256
// digests in constant time. It is false for the zero Secret.
func (s Secret) Matches(candidate string) bool {
	if !s.set {
		return false
	}
	d := sha256.Sum256([]byte(candidate))
	return subtle.ConstantTimeCompare(d[:], s.digest[:]) == 1
}

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns a redacted form for %#v.
func (s Secret) GoString() string { return "config.Secret(" + redacted + ")" }

// LogValue returns "[redacted]", so a Secret logged with slog never leaks.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns "[redacted]" as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// CheckBearerToken reports why v cannot work as an admin API token sent
// in an Authorization header: HTTP drops leading and trailing spaces and
// tabs from a header value and refuses control characters, so such a
// token could never match what a client sends.
func CheckBearerToken(v string) error {
	if strings.TrimLeft(v, " \t") != v || strings.TrimRight(v, " \t") != v {
		return errors.New("the token starts or ends with a space or tab, which HTTP strips from the Authorization header: it could never match")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("the token holds a control character (byte %d, 0x%02x), which no HTTP header may carry", i, c)
		}
	}
	return nil
}
