package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// defaultAdmin is the admin API the CLI talks to when neither --admin nor
// $GATEHOUSE_ADMIN names one: the default admin.listen.
const defaultAdmin = "http://127.0.0.1:9901"

// adminFlags are the flags of every command that talks to a running
// gateway's admin API: bans and sign.
type adminFlags struct {
	fs        *flag.FlagSet
	admin     *string
	token     *string
	tokenFile *string
}

func addAdminFlags(fs *flag.FlagSet) *adminFlags {
	return &adminFlags{
		fs:        fs,
		admin:     fs.String("admin", envOr("GATEHOUSE_ADMIN", defaultAdmin), "admin API base `URL`"),
		token:     fs.String("token", os.Getenv("GATEHOUSE_TOKEN"), "admin API token (default $GATEHOUSE_TOKEN)"),
		tokenFile: fs.String("token-file", "", "read the admin API token from `FILE` (one line)"),
	}
}

// given reports whether one of the flags that pick a gateway was set on
// the command line.
func (f *adminFlags) given() bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) {
		set = set || fl.Name == "admin" || fl.Name == "token" || fl.Name == "token-file"
	})
	return set
}

// client resolves the flags into an admin API client. An error is a
// usage error, found before the gateway is contacted.
func (f *adminFlags) client() (*adminClient, error) {
	base := strings.TrimRight(*f.admin, "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin %q is not an http(s) URL", *f.admin)
	}
	token := *f.token
	if *f.tokenFile != "" {
		tokenSet := false
		f.fs.Visit(func(fl *flag.Flag) { tokenSet = tokenSet || fl.Name == "token" })
		if tokenSet {
			return nil, errors.New("give --token or --token-file, not both")
		}
		var err error
		if token, err = readTokenFile(*f.tokenFile); err != nil {
			return nil, err
		}
	}
	return &adminClient{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{Proxy: nil}}}, nil
}

// readTokenFile reads a token from path: the whole file less one trailing
// newline ("\n" or "\r\n"), as `echo TOKEN > FILE` and editors write it.
func readTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	switch {
	case tok == "":
		return "", fmt.Errorf("--token-file %s is empty", path)
	case strings.ContainsAny(tok, "\r\n"):
		return "", fmt.Errorf("--token-file %s has more than one line; it must hold the token alone", path)
	}
	return tok, nil
}

// adminClient calls a running gateway's admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

// call sends one request; body, when not nil, is sent as JSON. The error
// is for people: it says which gateway could not be reached.
func (c *adminClient) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats the method and URL; the cause is what helps.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("cannot reach the admin API at %s (--admin or $GATEHOUSE_ADMIN): %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read the admin API's answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// apiError is an admin API refusal said in the CLI's terms: the flag at
// fault instead of the JSON field, no status code. usage is true when
// the gateway found a value malformed (400: exit 2, as for the checks
// made before asking it); a well-formed request the gateway refuses by
// its config or rules (422, 403, 404) is a runtime failure (exit 1).
type apiError struct {
	msg   string
	usage bool
}

// describeAPIError turns an admin API error answer into a message for
// the command line. flags maps the API's field names to the flag that set
// them ("duration" → "--for"), or to "" for a positional argument, whose
// value the message quotes already.
func (c *adminClient) describeAPIError(code int, body []byte, flags map[string]string) apiError {
	var e struct{ Error, Field string }
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		// Not the API's JSON: a proxy in between, or not a gateway.
		text := strings.TrimSpace(string(body))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		return apiError{msg: fmt.Sprintf("unexpected answer from %s: %s %s", c.base, http.StatusText(code), text)}
	}
	switch code {
	case http.StatusUnauthorized:
		if c.token == "" {
			return apiError{msg: "the admin API needs a token: give --token, --token-file or $GATEHOUSE_TOKEN", usage: true}
		}
		return apiError{msg: "the admin API refused the token (" + e.Error + "): check --token, --token-file or $GATEHOUSE_TOKEN"}
	case http.StatusForbidden:
		return apiError{msg: "refused by the admin API: " + e.Error}
	case http.StatusNotFound:
		return apiError{msg: e.Error}
	}
	if name, ok := flags[e.Field]; ok {
		msg := e.Error
		if name != "" {
			msg = name + ": " + msg
		}
		return apiError{msg: msg, usage: code == http.StatusBadRequest}
	}
	if e.Field != "" && e.Field != "body" {
		return apiError{msg: e.Field + ": " + e.Error}
	}
	return apiError{msg: e.Error}
}

// reorderFlags moves flags before positional arguments, so both
// "add IP --for 1h" and "add --for 1h IP" work.
func reorderFlags(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if f := fs.Lookup(name); f != nil && !strings.Contains(name, "=") {
				if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); !isBool && i+1 < len(args) {
					flags = append(flags, args[i+1])
					i++
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
