package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"gatehouse/rules/match"
)

// LogFormats names the access log formats a replay reads, for messages.
const LogFormats = "nginx/Apache combined, common and vhost_combined, and gatehouse's json, combined and combined_host"

// ReplayInput is one access log ready for Replay.Read: decompressed when
// it is gzip (known by its magic bytes, whatever its name), and
// buffered, so that the time of its first line is known before it is
// read and several logs can be replayed in time order.
type ReplayInput struct {
	// Name names the log in messages.
	Name string
	// Start is the time of the first line in a known format within the
	// first 64 KiB; zero when there is none.
	Start time.Time
	// Gzip is true when the log was gzip-compressed.
	Gzip bool
	br   *bufio.Reader
}

// NewReplayInput prepares r, named name, for a replay. It reads the start
// of r; the Read of the ReplayInput returns r's (decompressed) bytes from
// the first one.
func NewReplayInput(name string, r io.Reader) (*ReplayInput, error) {
	in := &ReplayInput{Name: name}
	br := bufio.NewReaderSize(r, maxLogLine)
	// RFC 1952 §2.3.1: ID1 0x1f, ID2 0x8b, CM 8 (deflate).
	if magic, _ := br.Peek(3); bytes.Equal(magic, []byte{0x1f, 0x8b, 8}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		in.Gzip = true
		br = bufio.NewReaderSize(zr, maxLogLine)
	}
	head, err := br.Peek(maxLogLine)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for len(head) > 0 {
		line, rest, _ := bytes.Cut(head, []byte("\n"))
		if e, err := match.ParseLogLine(line); err == nil {
			in.Start = e.Time
			break
		}
		head = rest
	}
	in.br = br
	return in, nil
}

// Read reads the log's bytes, decompressed.
func (in *ReplayInput) Read(p []byte) (int, error) { return in.br.Read(p) }

// SortReplayInputs orders logs by the time of their first line, so that
// the rotated files of one log ("access.log access.log.1
// access.log.2.gz", as a shell lists them) are replayed oldest first.
// Logs without a known first line come first; the sort is stable.
func SortReplayInputs(ins []*ReplayInput) {
	slices.SortStableFunc(ins, func(a, b *ReplayInput) int { return a.Start.Compare(b.Start) })
}
