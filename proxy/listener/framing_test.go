package listener

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// guardOver returns what the server side reads through a framingGuard
// when the client writes in, split into writes of chunk bytes (0: one
// write), and the reasons it refused.
func guardOver(t testing.TB, in string, chunk int) (string, []string) {
	t.Helper()
	client, server := net.Pipe()
	var reasons []string
	g := newFramingGuard(server, 1<<10, func(r string) { reasons = append(reasons, r) })
	go func() {
		defer client.Close()
		if chunk <= 0 {
			chunk = len(in)
		}
		for i := 0; i < len(in); i += chunk {
			if _, err := io.WriteString(client, in[i:min(len(in), i+chunk)]); err != nil {
				return
			}
		}
	}()
	if err := g.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 7) // small reads, as a server's background read makes
	for {
		n, err := g.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
		if g.state == stRejected && g.ready == g.out {
			break // the rest is drained until the server closes
		}
	}
	g.Close()
	return out.String(), reasons
}

const hostLine = "Host: a.example\r\n"

var guardCases = []struct {
	name string
	in   string
	// out is what the server reads: in itself when "".
	out    string
	reason string
}{
	// Passed unchanged: the framing is followed across bodies.
	{name: "simple get", in: "GET / HTTP/1.1\r\n" + hostLine + "\r\n"},
	{name: "bare LF", in: "GET / HTTP/1.0\n" + hostLine + "\n"},
	{name: "content-length body with a request inside",
		in: "POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 28\r\n\r\nGET / HTTP/1.2\r\nX: y\r\n z\r\n\r\n" +
			"GET /b HTTP/1.1\r\n" + hostLine + "\r\n"},
	{name: "chunked body with extensions and trailers",
		in: "POST / HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: Chunked\r\n\r\n" +
			"a;x=y\r\nGET / HTTP\r\n1 \r\n/\r\n0\r\nT: v\r\n\r\n" + "GET /b HTTP/1.1\r\n" + hostLine + "\r\n"},
	{name: "CRLF after a POST", in: "POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 1\r\n\r\nx\r\n\r\nGET / HTTP/1.1\r\n" + hostLine + "\r\n"},
	{name: "same content-length twice", in: "POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
	{name: "websocket handshake", in: "GET / HTTP/1.1\r\n" + hostLine + "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},

	// Refused: the head and everything after it is replaced.
	{name: "CL and TE", in: "POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
		out: string(refusal), reason: reasonCLTE},
	{name: "TE and CL, TE obfuscated", in: "POST / HTTP/1.1\r\n" + hostLine + "transfer-encoding: xchunked\r\ncontent-length: 4\r\n\r\n",
		out: string(refusal), reason: reasonCLTE},
	{name: "TE on HTTP/1.0", in: "POST / HTTP/1.0\r\n" + hostLine + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		out: string(refusal), reason: reasonTE10},
	{name: "obs-fold", in: "GET / HTTP/1.1\r\n" + hostLine + "X: a\r\n b\r\n\r\n", out: string(refusal), reason: reasonObsFold},
	{name: "obs-fold first line", in: "GET / HTTP/1.1\r\n\tX: a\r\n\r\n", out: string(refusal), reason: reasonObsFold},
	{name: "HTTP/1.2", in: "GET / HTTP/1.2\r\n" + hostLine + "\r\n", out: string(refusal), reason: reasonVersion},
	{name: "HTTP/1.1 with trailing space", in: "GET / HTTP/1.1 \r\n" + hostLine + "\r\n", out: string(refusal), reason: reasonVersion},
	{name: "h2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", out: string(refusal), reason: reasonVersion},
	{name: "second request refused, first passed",
		in:  "GET /a HTTP/1.1\r\n" + hostLine + "\r\nGET /b HTTP/1.1\r\n" + hostLine + "X: 1\r\n\t2\r\n\r\n",
		out: "GET /a HTTP/1.1\r\n" + hostLine + "\r\n" + string(refusal), reason: reasonObsFold},
	{name: "refused after a chunked body",
		in:  "POST / HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.5\r\n\r\n",
		out: "POST / HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + string(refusal), reason: reasonVersion},

	// Passed through unparsed: net/http refuses and closes by itself.
	{name: "gzip transfer coding", in: "POST / HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: gzip\r\n\r\nGET / HTTP/1.2\r\n\r\n"},
	{name: "bad content-length", in: "POST / HTTP/1.1\r\n" + hostLine + "Content-Length: +3\r\n\r\nGET / HTTP/1.2\r\n\r\n"},

	// A malformed chunked body: handed out up to the fault,
	// so net/http refuses it, then EOF: nothing after it is a request.
	{name: "bare LF in chunk line", in: chunkedHead + "3\nabc\r\n0\r\n\r\n" + smuggled,
		out: chunkedHead + "3\n", reason: reasonBadChunk},
	{name: "0x chunk size", in: chunkedHead + "0x3\r\nabc\r\n0\r\n\r\n" + smuggled,
		out: chunkedHead + "0x3\r\n", reason: reasonBadChunk},
	{name: "bare CR before a chunk extension", in: chunkedHead + "3\r;ext\r\nabc\r\n0\r\n\r\n" + smuggled,
		out: chunkedHead + "3\r;ext\r\n", reason: reasonBadChunk},
	{name: "second chunk malformed", in: chunkedHead + "3\r\nabc\r\n-1\r\nx\r\n0\r\n\r\n" + smuggled,
		out: chunkedHead + "3\r\nabc\r\n-1\r\n", reason: reasonBadChunk},
	{name: "chunk size over 16 digits", in: chunkedHead + "00000000000000003\r\nabc\r\n0\r\n\r\n" + smuggled,
		out: chunkedHead + "00000000000000003\r\n", reason: reasonBadChunk},
	{name: "chunk data not followed by CRLF", in: chunkedHead + "3\r\nabcd\r\n0\r\n\r\n" + smuggled,
		out: chunkedHead + "3\r\nabcd\r", reason: reasonBadChunk},
	{name: "empty chunk-size line", in: chunkedHead + "\r\n" + smuggled,
		out: chunkedHead + "\r\n", reason: reasonBadChunk},
	{name: "chunk-size line over the limit", in: chunkedHead + "3;" + strings.Repeat("x", maxChunkLine) + "\r\nabc\r\n0\r\n\r\n" + smuggled,
		out: chunkedHead + "3;" + strings.Repeat("x", maxChunkLine-1), reason: reasonBadChunk},
	{name: "trailer over the limit", in: chunkedHead + "0\r\nT: " + strings.Repeat("x", maxTrailerBytes) + "\r\n\r\n" + smuggled,
		out: chunkedHead + "0\r\nT: " + strings.Repeat("x", maxTrailerBytes-2), reason: reasonBadChunk},
}

// chunkedHead starts a chunked request; smuggled is the request a
// malformed body must never let through.
const (
	chunkedHead = "POST / HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: chunked\r\n\r\n"
	smuggled    = "GET /smuggled HTTP/1.1\r\n" + hostLine + "\r\n"
)

func TestFramingGuard(t *testing.T) {
	t.Parallel()
	for _, tc := range guardCases {
		for _, chunk := range []int{0, 1, 5} {
			out, reasons := guardOver(t, tc.in, chunk)
			want := tc.out
			if want == "" {
				want = tc.in
			}
			if out != want {
				t.Errorf("%s (writes of %d): server read %q, want %q", tc.name, chunk, out, want)
			}
			if got := strings.Join(reasons, ","); got != tc.reason {
				t.Errorf("%s (writes of %d): reasons %q, want %q", tc.name, chunk, got, tc.reason)
			}
		}
	}
}

// TestFramingGuardOverServer runs net/http behind the guard: the refusal
// becomes a 400 with Connection: close, and requests before it are served.
func TestFramingGuardOverServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, r.URL.Path)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(&guardListener{Listener: ln, maxHeaderBytes: http.DefaultMaxHeaderBytes})
	t.Cleanup(func() { srv.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ok HTTP/1.1\r\n"+hostLine+"\r\nPOST / HTTP/1.1\r\n"+hostLine+"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	br := bufio.NewReader(c)
	for i, want := range []int{200, 400} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Errorf("response %d: status %d (%q), want %d", i, resp.StatusCode, body, want)
		}
		if want == 400 && !resp.Close {
			t.Errorf("response %d: no Connection: close", i)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the 400: read error %v, want EOF", err)
	}
}

// FuzzFramingGuard checks that the guard never invents bytes: what the
// server reads is the input, or a prefix of it at a request boundary
// followed by the refusal; and that however the input is split into
// writes, the server reads the same.
func FuzzFramingGuard(f *testing.F) {
	for _, tc := range guardCases {
		f.Add(tc.in, uint8(3))
	}
	f.Fuzz(func(t *testing.T, in string, chunk uint8) {
		out, reasons := guardOver(t, in, 0)
		split, _ := guardOver(t, in, int(chunk%16)+1)
		if out != split {
			t.Fatalf("guard(%q) read %q in one write but %q in writes of %d", in, out, split, chunk%16+1)
		}
		if len(reasons) == 0 {
			if out != in {
				t.Fatalf("guard(%q) passed %q without refusing", in, out)
			}
			return
		}
		if len(reasons) == 1 && reasons[0] == reasonBadChunk {
			// A malformed body: a prefix of the input, nothing invented.
			if !strings.HasPrefix(in, out) {
				t.Fatalf("guard(%q) = %q after a malformed body: want a prefix of the input", in, out)
			}
			return
		}
		if len(reasons) != 1 || !strings.HasSuffix(out, string(refusal)) || !strings.HasPrefix(in, strings.TrimSuffix(out, string(refusal))) {
			t.Fatalf("guard(%q) = %q, reasons %q: want a prefix of the input and one refusal", in, out, reasons)
		}
	})
}

// TestFramingGuardPoisonedByReadError: a body read that times out
// (body_read_timeout) poisons the connection: what the client sends
// afterwards is never handed to the server as a request.
func TestFramingGuardPoisonedByReadError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, head string }{
		{"content-length", "POST / HTTP/1.1\r\n" + hostLine + "Content-Length: 10\r\n\r\nabc"},
		{"chunked", chunkedHead + "5\r\nab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, server := net.Pipe()
			defer client.Close()
			g := newFramingGuard(server, 1<<10, nil)
			defer g.Close()
			go func() {
				io.WriteString(client, tc.head)
			}()
			br := bufio.NewReader(g)
			req, err := http.ReadRequest(br)
			if err != nil {
				t.Fatal(err)
			}
			if err := g.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(req.Body)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("body read = %v, want a timeout", err)
			}
			// The client goes on as if its body were over and sends a
			// request; the server must read only EOF.
			g.SetReadDeadline(time.Now().Add(10 * time.Second))
			go func() {
				io.WriteString(client, "GET /smuggled HTTP/1.1\r\n"+hostLine+"\r\n")
			}()
			if n, err := g.Read(make([]byte, 64)); n != 0 || err != io.EOF {
				t.Fatalf("read after the timed-out body = %d, %v; want 0, EOF", n, err)
			}
		})
	}
}
