package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// errReader returns data, then err.
type errReader struct {
	data string
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestClientBodyStates: how a body ends decides the answer — EOF is
// done, a deadline is a stall (408), max_body is 413, anything else is a
// malformed body (400) — and every failure but max_body reaches the
// proxy as a *clientBodyError.
func TestClientBodyStates(t *testing.T) {
	t.Parallel()
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name      string
		err       error
		maxBody   int64
		wantState uint32
		wantCBE   bool
	}{
		{name: "eof", err: io.EOF, wantState: bodyDone},
		{name: "HTTP/1 read deadline", err: timeout, wantState: bodyStalled, wantCBE: true},
		{name: "HTTP/2 stream deadline", err: fmt.Errorf("%w", os.ErrDeadlineExceeded), wantState: bodyStalled, wantCBE: true},
		{name: "bad chunk", err: errors.New("invalid byte in chunk length"), wantState: bodyMalformed, wantCBE: true},
		{name: "cut short", err: io.ErrUnexpectedEOF, wantState: bodyMalformed, wantCBE: true},
		{name: "over max_body", err: io.EOF, maxBody: 2, wantState: bodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/", nil)
			r.Body = io.NopCloser(&errReader{data: "abcd", err: tc.err})
			if tc.maxBody > 0 {
				r.Body = http.MaxBytesReader(w, r.Body, tc.maxBody)
			}
			b := newClientBody(w, r, time.Minute) // the recorder has no deadlines: ignored
			_, err := io.ReadAll(b)
			if got := b.state.Load(); got != tc.wantState {
				t.Errorf("state = %d, want %d", got, tc.wantState)
			}
			var cbe *clientBodyError
			if errors.As(err, &cbe) != tc.wantCBE {
				t.Errorf("ReadAll error %v: a *clientBodyError is %v, want %v", err, !tc.wantCBE, tc.wantCBE)
			}
			if tc.err != io.EOF && !errors.Is(err, tc.err) {
				t.Errorf("ReadAll error %v does not wrap %v", err, tc.err)
			}
			if bodyOf(r.WithContext(b)) != b {
				t.Error("bodyOf does not find the body through the context")
			}
		})
	}
}

// TestSpool: a buffered body comes back whole with its length, from
// memory up to the limit and from an unlinked file past it; the body's
// own error comes back unchanged.
func TestSpool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		size     int
		declared bool
		wantFile bool
	}{
		{name: "empty", size: 0},
		{name: "small", size: 10, declared: true},
		{name: "at the limit", size: 64, declared: true},
		{name: "over the limit", size: 65, wantFile: true},
		{name: "large, length unknown", size: 10_000, wantFile: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := strings.Repeat("0123456789", tc.size/10+1)[:tc.size]
			size := int64(-1)
			if tc.declared {
				size = int64(tc.size)
			}
			body, n, err := spool(strings.NewReader(data), size, 64)
			if err != nil {
				t.Fatalf("spool = %v", err)
			}
			defer body.Close()
			if _, isFile := body.(*os.File); isFile != tc.wantFile {
				t.Errorf("spooled to a file = %v, want %v", isFile, tc.wantFile)
			}
			if f, ok := body.(*os.File); ok {
				if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("buffer file %s still has a name: %v", f.Name(), err)
				}
			}
			got, err := io.ReadAll(body)
			if err != nil || string(got) != data || n != int64(len(data)) {
				t.Errorf("spooled body = %d bytes (n %d), %v; want the %d sent", len(got), n, err, len(data))
			}
		})
	}
	cause := &clientBodyError{errors.New("stalled")}
	for _, size := range []int{10, 100} {
		_, _, err := spool(&errReader{data: strings.Repeat("x", size), err: cause}, -1, 64)
		if !errors.Is(err, cause) {
			t.Errorf("spool of a %d-byte body that fails = %v, want %v", size, err, cause)
		}
	}
}
