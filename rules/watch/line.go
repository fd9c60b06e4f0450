package watch

import (
	"errors"
	"strconv"
	"time"
)

// Line is one log line handed to the filters.
type Line struct {
	// Source is the name of the source (the watch entry) that read it.
	Source string
	// Origin is where it was read: the file's path, or "journal".
	Origin string
	// Text is the line without its newline. For the journal it is
	// MESSAGE alone; SyslogIdentifier, PID and Host carry the rest of
	// what a syslog line would have.
	Text string
	// Time is when the line was logged, from the journal's
	// __REALTIME_TIMESTAMP. Zero for files: the filter reads the time
	// from the text.
	Time time.Time
	// Host is the journal's _HOSTNAME; empty for files.
	Host string
	// SyslogIdentifier is the journal's SYSLOG_IDENTIFIER; empty for
	// files.
	SyslogIdentifier string
	// PID is the journal's _PID (0 if absent); 0 for files.
	PID int
	// Key and Pos are where the source stands once this line is handed
	// over: the key it saves its position under (see Positions) and that
	// position. A consumer that saves them together with what the line
	// caused (offence counts) resumes exactly after the lines it counted.
	Key string
	Pos Position
}

// Position is how far a source has read one file or the journal.
type Position struct {
	// Dev and Ino identify the file (st_dev, st_ino).
	Dev uint64 `json:"dev,omitempty"`
	Ino uint64 `json:"ino,omitempty"`
	// Offset is the byte offset just past the last line handed over.
	Offset int64 `json:"offset,omitempty"`
	// HeadLen and HeadHash are the length and FNV-1a 64 hash of the
	// file's first bytes (up to 1 KiB, and never past Offset): a file
	// whose first HeadLen bytes hash differently is not the file that
	// was read (a reused inode, or a truncated and rewritten file).
	HeadLen  int    `json:"head_len,omitempty"`
	HeadHash uint64 `json:"head_hash,omitempty"`
	// Cursor is the journal cursor of the last entry handed over.
	Cursor string `json:"cursor,omitempty"`
}

// Positions keeps the positions of the sources across restarts. Keys
// are chosen by the sources: "file\x00NAME\x00PATH" and
// "journal\x00NAME". Implementations must be safe for concurrent use.
// A position is what the next start resumes from: an implementation
// makes it durable when SetPosition returns (PositionFile), or later
// together with what the lines before it caused, keeping the newer of a
// source's save and the consumer's Line.Pos (see the package's Data
// flow).
type Positions interface {
	Position(key string) (Position, bool)
	SetPosition(key string, p Position) error
}

// Errors that Check and Run wrap, for the caller's check warnings.
var (
	// ErrNoFile: no file matches the source's paths (yet).
	ErrNoFile = errors.New("no file to read")
	// ErrPermission: a file or the journal is there but cannot be read.
	ErrPermission = errors.New("permission denied")
	// ErrNoJournal: journalctl or the journal files are missing.
	ErrNoJournal = errors.New("no journal")
	// ErrTooManyFiles: more files match than FileConfig.MaxFiles; the
	// others are not read.
	ErrTooManyFiles = errors.New("too many files")
)

func fileKey(name, path string) string { return "file\x00" + name + "\x00" + path }

func journalKey(name string) string { return "journal\x00" + name }

// SyslogText is l as its filter reads it: for a journal entry, the
// syslog line the entry stands for without its timestamp ("HOST
// IDENT[PID]: MESSAGE", what fail2ban's systemd backend hands its
// filters; the time is Time), for a file's line its Text.
func (l Line) SyslogText() string {
	if l.Time.IsZero() || (l.Host == "" && l.SyslogIdentifier == "") {
		return l.Text
	}
	b := make([]byte, 0, len(l.Host)+len(l.SyslogIdentifier)+len(l.Text)+16)
	if l.Host != "" {
		b = append(b, l.Host...)
		b = append(b, ' ')
	}
	if l.SyslogIdentifier != "" {
		b = append(b, l.SyslogIdentifier...)
		if l.PID > 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(l.PID), 10)
			b = append(b, ']')
		}
		b = append(b, ':', ' ')
	}
	b = append(b, l.Text...)
	return string(b)
}
