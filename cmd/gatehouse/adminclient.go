package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/signer"
)

// defaultAdmin is the admin API the CLI talks to when nothing else names
// one: the default admin.listen.
const defaultAdmin = "http://" + config.DefaultAdminListen

// adminFlags are the flags of every command that talks to a running
// gateway's admin API: bans and sign.
type adminFlags struct {
	fs        *flag.FlagSet
	admin     *string
	token     *string
	tokenFile *string
	// config, when the command has it (bans -c FILE), names the config
	// whose admin.listen is the default address.
	config *string
}

func addAdminFlags(fs *flag.FlagSet) *adminFlags {
	return &adminFlags{
		fs:        fs,
		admin:     fs.String("admin", os.Getenv("GATEHOUSE_ADMIN"), "admin API base `URL` (default $GATEHOUSE_ADMIN, else admin.listen of -c FILE where the command has it, else "+defaultAdmin+")"),
		token:     fs.String("token", os.Getenv("GATEHOUSE_TOKEN"), "admin API token (default $GATEHOUSE_TOKEN)"),
		tokenFile: fs.String("token-file", "", "read the admin API token from `FILE`, as the config's file: reference does"),
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
	path := ""
	if f.config != nil {
		path = *f.config
	}
	base, err := adminBase(*f.admin, path)
	if err != nil {
		return nil, err
	}
	token := *f.token
	if *f.tokenFile != "" {
		tokenSet := false
		f.fs.Visit(func(fl *flag.Flag) { tokenSet = tokenSet || fl.Name == "token" })
		if tokenSet {
			return nil, errors.New("give --token or --token-file, not both")
		}
		if token, err = readTokenFile(*f.tokenFile); err != nil {
			return nil, err
		}
	}
	if token != "" {
		if err := config.CheckBearerToken(token); err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
	}
	return &adminClient{base: base, token: token, http: adminHTTP(30 * time.Second)}, nil
}

// adminHTTP is the client for the admin listener: no proxy from the
// environment and no redirects, so an answer comes from the address
// named and nowhere else.
func adminHTTP(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// readTokenFile reads a token from path exactly as the config reads a
// file: reference: a regular file of bounded size, less its trailing line
// ends, so a token file works the same in the config and on the command
// line.
func readTokenFile(path string) (string, error) {
	tok, err := config.ReadSecretFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file %s: %w", path, err)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("--token-file %s has more than one line; it must hold the token alone", path)
	}
	return tok, nil
}

// adminURL is the admin listener's base URL: scheme, host and an
// optional path prefix, never a query or fragment (a request path is
// appended to it).
type adminURL struct {
	u *url.URL
}

// String is the base with any password hidden, for messages.
func (a adminURL) String() string { return a.u.Redacted() }

// at is the URL of path (which starts with "/") under the base.
func (a adminURL) at(path string) string { return a.u.String() + path }

// parseAdminURL checks an --admin or $GATEHOUSE_ADMIN value.
func parseAdminURL(raw string) (adminURL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return adminURL{}, fmt.Errorf("--admin %q is not an http(s) URL", redactRaw(raw))
	case strings.ContainsAny(raw, "?#"):
		return adminURL{}, fmt.Errorf("--admin %s: give the admin listener's base URL, without a query or fragment", u.Redacted())
	}
	return adminURL{u: u}, nil
}

// redactRaw hides the password of a URL that may not parse.
func redactRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		return "…" + raw[i:]
	}
	return raw
}

// adminBase finds the admin listener: admin (the --admin flag, which
// defaults to $GATEHOUSE_ADMIN), else admin.listen of the config at path
// (-c FILE, default $GATEHOUSE_CONFIG) when there is one, else the
// default address.
func adminBase(admin, path string) (adminURL, error) {
	if admin != "" {
		return parseAdminURL(admin)
	}
	if path == "" {
		return parseAdminURL(defaultAdmin)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return adminURL{}, fmt.Errorf("read config: %w", err)
	}
	return adminFromConfig(path, data)
}

// adminFromConfig is the admin listener that the config data (from name)
// gives in admin.listen.
func adminFromConfig(name string, data []byte) (adminURL, error) {
	listen, err := config.AdminListen(name, data)
	if err != nil {
		return adminURL{}, err
	}
	if listen == "off" {
		return adminURL{}, fmt.Errorf("%s: admin.listen is off; this command needs the admin listener (or --admin URL)", name)
	}
	return parseAdminURL("http://" + dialAddr(listen))
}

// dialAddr turns a listen address into one to connect to: a wildcard or
// missing host becomes loopback of the same family.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // the request then fails and says so
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// adminClient calls a running gateway's admin API.
type adminClient struct {
	base  adminURL
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
	req, err := http.NewRequestWithContext(ctx, method, c.base.at(path), rd)
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

// flagDurationError says a duration parse error in the command line's
// terms: `invalid duration "1x" for --for: unknown unit "x"; …`.
func flagDurationError(flag string, err error) error {
	var de *signer.DurationError
	if errors.As(err, &de) {
		return fmt.Errorf("invalid duration %q for %s: %s", de.Input, flag, de.Reason)
	}
	return fmt.Errorf("%s: %w", flag, err)
}
