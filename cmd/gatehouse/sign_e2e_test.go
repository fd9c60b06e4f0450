//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"gatehouse/rules/testenv"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"gatehouse/signer"
)

// The signing tests run the real gateway binary: S3 URLs it signs are
// used against versitygw, an S3-compatible server that verifies SigV4
// pre-signed URLs, started on 127.0.0.1 by the test; signed links go
// through the gateway's public listener to an echo upstream.

// versitygwInstall is how to install the S3 server the tests need.
const versitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// The versitygw root account and region of the tests.
const (
	s3Access = "AKIDGATEHOUSEE2E"
	s3Secret = "gatehouse-e2e-secret-access-key"
	s3Region = "eu-west-1"
)

// Admin tokens of the signing configs.
const (
	signToken    = "media-backend-token" // every sign scope
	limitedToken = "limited-token"       // every sign scope, public prefixes only
	bansToken    = "bans-token"          // bans only
)

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// signAdmin is the admin section of the signing configs.
func signAdmin() string {
	return fmt.Sprintf(`admin:
  listen: "127.0.0.1:0"
  tokens:
    - {name: media-backend, token: "sha256:%s", scopes: [sign:s3, sign:cloudfront, sign:link]}
    - {name: limited, token: "sha256:%s", scopes: [sign:s3, sign:cloudfront, sign:link], prefixes: [media/public/, paid/public/, videos/public/]}
    - {name: ops, token: "sha256:%s", scopes: [bans:read, bans:write]}
`, sha256Hex(signToken), sha256Hex(limitedToken), sha256Hex(bansToken))
}

// startVersitygw runs versitygw with its posix backend on a fresh
// directory, listening on 127.0.0.1 (a port the kernel picks), and
// returns its base URL. It is stopped when the test ends.
func startVersitygw(t *testing.T) string {
	t.Helper()
	bin := testenv.GoTool(t, "versitygw", versitygwInstall)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--access", s3Access, "--secret", s3Secret, "--region", s3Region,
		"--port", "127.0.0.1:0", "--quiet", "posix", data)
	out := newLogBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second // then killed
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit is seen through exited; its status does not matter at cleanup
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("versitygw output:\n%s", out)
		}
	})
	port := listeningPort(t, cmd.Process.Pid, exited)
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// listeningPort waits until process pid listens on a TCP port of
// 127.0.0.1 and returns it. It finds the process's sockets in
// /proc/PID/fd and their addresses in /proc/PID/net/tcp, so no port is
// ever guessed.
func listeningPort(t *testing.T, pid int, exited <-chan struct{}) int {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		inodes := map[string]bool{}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)) // empty until the process has sockets
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if ino, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
				inodes[strings.TrimSuffix(ino, "]")] = true
			}
		}
		table, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
		for line := range strings.Lines(string(table)) {
			f := strings.Fields(line)
			// sl local_address rem_address st ... inode; 0A is LISTEN,
			// 0100007F is 127.0.0.1 in the kernel's byte order.
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] || !strings.HasPrefix(f[1], "0100007F:") {
				continue
			}
			port, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0100007F:"), 16, 16)
			if err == nil {
				return int(port)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on 127.0.0.1 within %v", startTimeout)
		}
		select {
		case <-ticker.C:
		case <-exited:
			t.Fatalf("versitygw exited before listening")
		}
	}
}

// s3Client is an SDK client for versitygw at endpoint, to set up buckets
// and objects and read back uploads.
func s3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:       s3Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s3Access, s3Secret, ""),
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		HTTPClient:   &http.Client{Timeout: clientTimeout, Transport: &http.Transport{Proxy: nil}},
	})
}

// secretDir writes files into a fresh directory, for file: references.
func secretDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// adminPost posts body to the gateway's admin API as token and returns
// the status and the decoded JSON answer.
func (g *gateway) adminPost(t *testing.T, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+g.adminAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, b, err := g.do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("POST %s = %d %q: not a JSON object: %v", path, resp.StatusCode, b, err)
	}
	return resp.StatusCode, v
}

// fetch sends method to a signed URL with a plain client, as a browser
// or the app's user would, and returns status and body.
func fetch(t *testing.T, method, rawURL string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestSignS3 signs S3 URLs through the admin API, the CLI and a config
// file, and uses them against versitygw, which verifies SigV4: a GET
// fetches the object, a PUT uploads one with its content type, and a
// tampered signature, another key, another content type and an expired
// URL are refused by the server itself.
func TestSignS3(t *testing.T) {
	t.Parallel()
	endpoint := startVersitygw(t)
	client := s3Client(endpoint)
	ctx := t.Context()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("media")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	objects := map[string]string{"videos/a.mp4": "episode one", "videos/b.mp4": "episode two", "public/trailer.mp4": "trailer"}
	for key, body := range objects {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(key),
			Body: strings.NewReader(body), ContentType: aws.String("video/mp4")}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}

	secrets := secretDir(t, map[string]string{"id": s3Access, "secret": s3Secret})
	cfg := fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
%shosts:
  - match: [www.test]
    upstreams: [http://127.0.0.1:1]
jails:
  admin: {maxretry: 5}
signer:
  s3:
    region: %s
    endpoint: %s
    path_style: true
    access_key_id: file:%[4]s/id
    secret_access_key: file:%[4]s/secret
    max_expires: 2h
`, signAdmin(), s3Region, endpoint, secrets)
	g := startGateway(t, cfg)

	sign := func(body string) (string, map[string]any) {
		t.Helper()
		code, v := g.adminPost(t, "/v1/sign/s3", signToken, body)
		if code != http.StatusOK {
			t.Fatalf("POST /v1/sign/s3 %s = %d %v", body, code, v)
		}
		return v["url"].(string), v
	}

	get, _ := sign(`{"bucket":"media","key":"videos/a.mp4","expires":"10m"}`)
	if code, body := fetch(t, http.MethodGet, get, nil, nil); code != http.StatusOK || string(body) != "episode one" {
		t.Fatalf("GET signed URL = %d %q, want 200 and the object", code, body)
	}

	put, v := sign(`{"bucket":"media","key":"uploads/new.txt","method":"PUT","content_type":"text/plain","expires":300}`)
	header := http.Header{}
	for k, val := range v["headers"].(map[string]any) {
		header.Set(k, val.(string))
	}
	if header.Get("Content-Type") != "text/plain" {
		t.Fatalf("PUT answer %v: want Content-Type among the headers to send", v)
	}
	if code, body := fetch(t, http.MethodPut, put, []byte("uploaded"), http.Header{"Content-Type": {"video/mp4"}}); code != http.StatusForbidden {
		t.Errorf("PUT with another content type = %d %s, want 403 (the content type is signed)", code, body)
	}
	if code, body := fetch(t, http.MethodPut, put, []byte("uploaded"), header); code != http.StatusOK {
		t.Fatalf("PUT signed URL = %d %s, want 200", code, body)
	}
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("uploads/new.txt")})
	if err != nil {
		t.Fatalf("the upload is not there: %v", err)
	}
	uploaded, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if string(uploaded) != "uploaded" || aws.ToString(obj.ContentType) != "text/plain" {
		t.Errorf("uploaded object = %q (%s), want \"uploaded\" as text/plain", uploaded, aws.ToString(obj.ContentType))
	}

	// The server refuses what the signature does not cover.
	u, err := url.Parse(get)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sig := q.Get("X-Amz-Signature")
	flipped := "0" + sig[1:]
	if sig[0] == '0' {
		flipped = "1" + sig[1:]
	}
	q.Set("X-Amz-Signature", flipped)
	u.RawQuery = q.Encode()
	if code, body := fetch(t, http.MethodGet, u.String(), nil, nil); code != http.StatusForbidden {
		t.Errorf("tampered signature = %d %s, want 403", code, body)
	}
	other := strings.Replace(get, "/media/videos/a.mp4", "/media/videos/b.mp4", 1)
	if code, body := fetch(t, http.MethodGet, other, nil, nil); code != http.StatusForbidden {
		t.Errorf("another key under the same signature = %d %s, want 403", code, body)
	}
	// A URL signed two hours ago for one hour, by the gateway's signer
	// with its clock set back: expired for the server.
	past, err := signer.NewS3(ctx, signer.S3Config{Region: s3Region, Endpoint: endpoint, PathStyle: true,
		AccessKeyID: s3Access, SecretAccessKey: s3Secret, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := past.Sign(ctx, signer.S3Request{Bucket: "media", Key: "videos/a.mp4"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := fetch(t, http.MethodGet, expired.URL, nil, nil); code != http.StatusForbidden || !bytes.Contains(bytes.ToLower(body), []byte("expired")) {
		t.Errorf("expired URL = %d %s, want 403 for expiry", code, body)
	}
	// The same signer with the right clock: the refusal above was the
	// expiry, not the signer.
	fresh, err := signer.NewS3(ctx, signer.S3Config{Region: s3Region, Endpoint: endpoint, PathStyle: true, AccessKeyID: s3Access, SecretAccessKey: s3Secret})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := fresh.Sign(ctx, signer.S3Request{Bucket: "media", Key: "videos/a.mp4"}, nil); err != nil {
		t.Fatal(err)
	} else if code, _ := fetch(t, http.MethodGet, res.URL, nil, nil); code != http.StatusOK {
		t.Errorf("fresh URL from the same signer = %d, want 200", code)
	}

	// The admin API's refusals.
	for _, tc := range []struct {
		name, token, body string
		want              int
		field             string
	}{
		{"no token", "", `{"bucket":"media","key":"videos/a.mp4"}`, 401, ""},
		{"bad token", "not-a-token", `{"bucket":"media","key":"videos/a.mp4"}`, 401, ""},
		{"wrong scope", bansToken, `{"bucket":"media","key":"videos/a.mp4"}`, 403, ""},
		{"prefix violation", limitedToken, `{"bucket":"media","key":"videos/a.mp4"}`, 403, "key"},
		{"over the cap", signToken, `{"bucket":"media","key":"videos/a.mp4","expires":"3h"}`, 422, "expires"},
	} {
		code, v := g.adminPost(t, "/v1/sign/s3", tc.token, tc.body)
		if code != tc.want || (tc.field != "" && v["field"] != tc.field) {
			t.Errorf("%s: POST /v1/sign/s3 = %d %v, want %d (field %q)", tc.name, code, v, tc.want, tc.field)
		}
	}
	if code, v := g.adminPost(t, "/v1/sign/s3", limitedToken, `{"bucket":"media","key":"public/trailer.mp4"}`); code != 200 {
		t.Errorf("limited token inside its prefix: %d %v", code, v)
	} else if code, body := fetch(t, http.MethodGet, v["url"].(string), nil, nil); code != 200 || string(body) != "trailer" {
		t.Errorf("GET the limited token's URL = %d %q", code, body)
	}
	g.waitMetric(t, 1, "gatehouse_jail_offences_total", "jail", "admin")

	// The CLI, through the gateway and locally from the config file.
	admin := "http://" + g.adminAddr
	for _, args := range [][]string{
		{"sign", "s3", "--bucket", "media", "--key", "videos/b.mp4", "--admin", admin, "--token", signToken},
		{"sign", "s3", "--bucket", "media", "--key", "videos/b.mp4", "--expires", "5m", "-c", g.cfgPath},
	} {
		stdout, stderr, code := runGatehouse(t, args...)
		lines := strings.Split(stdout, "\n")
		if code != 0 || len(lines) < 3 || !strings.HasPrefix(lines[1], "method: GET") || !strings.Contains(stdout, "expires: ") {
			t.Fatalf("gatehouse %s = %d %q %q", strings.Join(args, " "), code, stdout, stderr)
		}
		if code, body := fetch(t, http.MethodGet, lines[0], nil, nil); code != 200 || string(body) != "episode two" {
			t.Errorf("GET the CLI's URL (%s) = %d %q", args[len(args)-1], code, body)
		}
	}
	stdout, stderr, code := runGatehouse(t, "sign", "s3", "--bucket", "media", "--key", "videos/a.mp4", "--expires", "3h", "--admin", admin, "--token", signToken)
	if code != 1 || stderr != "gatehouse sign s3: --expires: 3h is over the maximum of 2h\n" || stdout != "" {
		t.Errorf("gatehouse sign s3 --expires 3h = %d %q %q, want 1 and the gateway's maximum for --expires", code, stdout, stderr)
	}
	if _, stderr, code := runGatehouse(t, "sign", "s3", "--bucket", "media", "--admin", admin); code != 2 || !strings.Contains(stderr, "--key are required") {
		t.Errorf("gatehouse sign s3 without --key = %d %q, want 2", code, stderr)
	}
	if _, _, code := runGatehouse(t, "sign", "s3", "--bucket", "media", "--key", "k", "--admin", admin, "-c", g.cfgPath); code != 2 {
		t.Errorf("gatehouse sign with both -c and --admin = %d, want 2", code)
	}

	log := g.waitLog(t, waitTimeout, "the audit line of the signed GET", func(log string) bool {
		return strings.Contains(log, `msg="admin call" component=audit token=media-backend method=POST path=/v1/sign/s3 action=sign:s3 resource=s3://media/videos/a.mp4 client_ip=127.0.0.1 status=200`)
	})
	for _, secret := range []string{signToken, limitedToken, bansToken, "not-a-token", s3Secret, "X-Amz-Signature", sig} {
		if strings.Contains(log, secret) {
			t.Errorf("the gateway log contains %q", secret)
		}
	}
}

// linkKeys are the signed-link keys of TestSignedLinks; the config
// rotates from the first to the second and then to the third.
var linkKeys = []string{"link-key-one-0123456789abcdef0123456", "link-key-two-0123456789abcdef0123456", "link-key-three-0123456789abcdef01234"}

// TestSignedLinks issues links through the admin API and the CLI and
// follows them through the gateway's public listener: a valid link
// reaches the upstream without its parameters; an expired, tampered,
// wrong-client or wrong-path one gets 403; the previous key keeps
// working after a rotation and stops when it is removed.
func TestSignedLinks(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "media")
	keys := secretDir(t, map[string]string{"one": linkKeys[0], "two": linkKeys[1], "three": linkKeys[2]})
	cfg := func(keyList string) string {
		return fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
%shosts:
  - match: [media.test]
    upstreams: [%s]
    signed_links:
      paths: ["/paid/"]
      keys: [%s]
log: {access: combined, level: debug}
`, signAdmin(), up.URL(), keyList)
	}
	g := startGateway(t, cfg(fmt.Sprintf("file:%[1]s/two, file:%[1]s/one", keys)))
	base := "http://media.test"
	sign := func(body string) string {
		t.Helper()
		code, v := g.adminPost(t, "/v1/sign/link", signToken, body)
		if code != http.StatusOK {
			t.Fatalf("POST /v1/sign/link %s = %d %v", body, code, v)
		}
		return v["url"].(string)
	}
	// get requests a signed URL (on http://media.test) from the gateway.
	get := func(link string) (int, echo) {
		t.Helper()
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := g.get(t, u.Host, u.RequestURI())
		var e echo
		if resp.StatusCode == http.StatusOK {
			e = decodeEcho(t, body)
		}
		return resp.StatusCode, e
	}
	// linkWith signs a link locally with one key and clock.
	linkWith := func(key string, now time.Time, path string, ip netip.Addr) string {
		t.Helper()
		l, err := signer.NewLinks(signer.LinkConfig{Keys: [][]byte{[]byte(key)}, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return base + path + "?" + l.Sign("GET", "media.test", path, "", now.Add(time.Hour), ip)
	}

	valid := sign(`{"url":"http://media.test/paid/a.mp4?t=10","expires":"10m"}`)
	code, e := get(valid)
	if code != http.StatusOK || e.URI != "/paid/a.mp4?t=10" {
		t.Fatalf("valid link = %d, upstream got %q; want 200 and /paid/a.mp4?t=10 without the link parameters", code, e.URI)
	}
	bound := sign(`{"url":"http://media.test/paid/a.mp4","ip":"127.0.0.1"}`)
	if code, _ := get(bound); code != http.StatusOK {
		t.Errorf("link bound to the client = %d, want 200", code)
	}
	hits := up.hits.Load()
	for _, tc := range []struct{ name, link string }{
		{"expired", linkWith(linkKeys[1], time.Now().Add(-2*time.Hour), "/paid/a.mp4", netip.Addr{})},
		{"tampered expiry", strings.Replace(valid, "gh_expires=1", "gh_expires=2", 1)},
		{"wrong client", sign(`{"url":"http://media.test/paid/a.mp4","ip":"203.0.113.9"}`)},
		{"wrong path", strings.Replace(valid, "/paid/a.mp4", "/paid/b.mp4", 1)},
		{"unknown key", linkWith(linkKeys[2], time.Now(), "/paid/a.mp4", netip.Addr{})},
		{"no parameters", base + "/paid/a.mp4"},
	} {
		if code, _ := get(tc.link); code != http.StatusForbidden {
			t.Errorf("%s: GET = %d, want 403", tc.name, code)
		}
	}
	if up.hits.Load() != hits {
		t.Errorf("refused links reached the upstream")
	}
	if code, e := get(base + "/free/a.mp4?gh_ip=kept"); code != http.StatusOK || e.URI != "/free/a.mp4?gh_ip=kept" {
		t.Errorf("unprotected path = %d %q, want 200 with the query untouched", code, e.URI)
	}

	// Rotation: key two signs, key one (listed second) still verifies.
	oldLink := linkWith(linkKeys[0], time.Now(), "/paid/a.mp4", netip.Addr{})
	if code, _ := get(oldLink); code != http.StatusOK {
		t.Errorf("link signed with the previous key = %d, want 200", code)
	}
	if res := g.reload(t, cfg(fmt.Sprintf("file:%[1]s/three, file:%[1]s/two", keys))); res != "ok" {
		t.Fatalf("reload = %s", res)
	}
	if code, _ := get(oldLink); code != http.StatusForbidden {
		t.Errorf("link of a removed key = %d, want 403", code)
	}
	if code, _ := get(valid); code != http.StatusOK {
		t.Errorf("link of the key now second = %d, want 200", code)
	}

	// The CLI, through the gateway and locally.
	admin := "http://" + g.adminAddr
	for _, args := range [][]string{
		{"sign", "link", "--url", base + "/paid/c.mp4", "--admin", admin, "--token", signToken},
		{"sign", "link", "--url", base + "/paid/c.mp4", "-c", g.cfgPath, "--json"},
		{"sign", "link", "--url", base + "/paid/c.mp4", "--admin", admin, "--token", signToken, "--json"},
	} {
		stdout, stderr, code := runGatehouse(t, args...)
		if code != 0 {
			t.Fatalf("gatehouse %s = %d %q %q", strings.Join(args, " "), code, stdout, stderr)
		}
		link := strings.SplitN(stdout, "\n", 2)[0]
		if args[len(args)-1] == "--json" {
			var v struct {
				URL       string `json:"url"`
				ExpiresAt string `json:"expires_at"`
			}
			if err := json.Unmarshal([]byte(stdout), &v); err != nil || v.ExpiresAt == "" {
				t.Fatalf("--json output %q: %v", stdout, err)
			}
			link = v.URL
			// A shell reads the line: "&" must not come as "\u0026".
			if !strings.Contains(stdout, "&gh_signature=") || strings.Contains(stdout, `\u0026`) {
				t.Errorf("gatehouse %s printed %q, want a URL with a plain \"&\"", strings.Join(args, " "), stdout)
			}
		}
		if code, e := get(link); code != http.StatusOK || e.URI != "/paid/c.mp4" {
			t.Errorf("GET the CLI's link = %d %q", code, e.URI)
		}
	}
	if _, stderr, code := runGatehouse(t, "sign", "link", "--url", base+"/free/c.mp4", "-c", g.cfgPath); code != 1 || !strings.Contains(stderr, "--url: path \"/free/c.mp4\" is not under hosts[0].signed_links.paths") {
		t.Errorf("gatehouse sign link outside the paths = %d %q, want 1", code, stderr)
	}

	// Neither the access log nor the gateway's log shows a signature.
	out := g.waitLog(t, waitTimeout, "audit line", func(log string) bool {
		return strings.Contains(log, `path=/v1/sign/link action=sign:link resource=http://media.test/paid/a.mp4`)
	})
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(g.stdout.String(), `"GET /paid/c.mp4 HTTP/1.1" 200`) {
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for the CLI's link:\n%s", g.stdout)
		}
		g.pause(t)
	}
	if access := g.stdout.String(); strings.Contains(access, "gh_signature") || strings.Contains(access, "gh_expires") {
		t.Errorf("the access log shows link parameters:\n%s", access)
	}
	if strings.Contains(out, "gh_signature") || strings.Contains(out, signToken) {
		t.Errorf("the gateway log shows a signature or a token:\n%s", out)
	}
}

// TestSignCloudFront signs CloudFront URLs and cookies through the admin
// API and the CLI, and checks the canned policy's RSA-SHA1 signature
// against the public key.
func TestSignCloudFront(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := secretDir(t, map[string]string{"cf.pem": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	g := startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
%shosts:
  - match: [www.test]
    upstreams: [http://127.0.0.1:1]
signer:
  cloudfront:
    key_pair_id: K2JCJMDEHXQW5F
    private_key: file:%s/cf.pem
    max_expires: 2h
    domains: [cdn.example.com]
`, signAdmin(), dir))

	code, v := g.adminPost(t, "/v1/sign/cloudfront", signToken, `{"url":"https://cdn.example.com/videos/a.mp4","expires":"30m"}`)
	if code != http.StatusOK {
		t.Fatalf("POST /v1/sign/cloudfront = %d %v", code, v)
	}
	u, err := url.Parse(v["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	exp := u.Query().Get("Expires")
	policy := `{"Statement":[{"Resource":"https://cdn.example.com/videos/a.mp4","Condition":{"DateLessThan":{"AWS:EpochTime":` + exp + `}}}]}`
	sig, err := base64.StdEncoding.DecodeString(strings.NewReplacer("-", "+", "_", "=", "~", "/").Replace(u.Query().Get("Signature")))
	if err != nil {
		t.Fatal(err)
	}
	h := sha1.Sum([]byte(policy))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA1, h[:], sig); err != nil {
		t.Errorf("canned policy signature: %v", err)
	}
	if at, err := time.Parse(time.RFC3339, v["expires_at"].(string)); err != nil || strconv.FormatInt(at.Unix(), 10) != exp {
		t.Errorf("expires_at %v does not match Expires=%s", v["expires_at"], exp)
	}

	for _, tc := range []struct {
		name, token, body string
		want              int
		field             string
	}{
		{"domain not listed", signToken, `{"url":"https://d111111abcdef8.cloudfront.net/videos/a.mp4"}`, 422, "url"},
		{"over the cap", signToken, `{"url":"https://cdn.example.com/videos/a.mp4","expires":"3h"}`, 422, "expires"},
		{"prefix violation", limitedToken, `{"url":"https://cdn.example.com/videos/a.mp4"}`, 403, "url"},
		{"not configured", signToken, `{"bucket":"media","key":"a"}`, 422, ""},
	} {
		path := "/v1/sign/cloudfront"
		if tc.name == "not configured" {
			path = "/v1/sign/s3"
		}
		if code, v := g.adminPost(t, path, tc.token, tc.body); code != tc.want || (tc.field != "" && v["field"] != tc.field) {
			t.Errorf("%s: POST %s = %d %v, want %d (field %q)", tc.name, path, code, v, tc.want, tc.field)
		}
	}

	stdout, stderr, code := runGatehouse(t, "sign", "cloudfront", "--url", "https://cdn.example.com/videos/*", "--cookies",
		"--ip", "203.0.113.0/24", "--admin", "http://"+g.adminAddr, "--token", signToken)
	if code != 0 || strings.Count(stdout, "Set-Cookie: CloudFront-") != 3 || !strings.Contains(stdout, "expires: ") {
		t.Fatalf("gatehouse sign cloudfront --cookies = %d %q %q", code, stdout, stderr)
	}
	stdout, stderr, code = runGatehouse(t, "sign", "cloudfront", "--url", "https://cdn.example.com/videos/b.mp4", "--not-before", "2030-01-02T15:04:05Z", "--expires", "1h", "-c", g.cfgPath)
	if code != 1 || !strings.Contains(stderr, "--not-before: 2030-01-02T15:04:05Z is not before the expiry") {
		t.Errorf("gatehouse sign cloudfront --not-before later than the expiry = %d %q %q, want 1", code, stdout, stderr)
	}
	stdout, stderr, code = runGatehouse(t, "sign", "cloudfront", "--url", "https://cdn.example.com/videos/b.mp4", "-c", g.cfgPath)
	if code != 0 || !strings.HasPrefix(stdout, "https://cdn.example.com/videos/b.mp4?Expires=") {
		t.Errorf("gatehouse sign cloudfront -c = %d %q %q", code, stdout, stderr)
	}
}
