// Package watch delivers the lines of log files and of the systemd
// journal to the log-watch jails, and remembers how far it has read so
// that a restart neither loses nor repeats a line.
//
// It owns reading: following files across rotation, picking up files
// that appear later, supervising journalctl. It does not judge lines
// (rules/watch/filter does), count offences or ban (rules does), and it
// knows no YAML (proxy/config maps the watch: section to FileConfig and
// JournalConfig).
//
// # Data flow
//
// A source runs with Run(ctx, out): each complete line is sent on out as
// a Line that carries the position the source stands at once it is
// handed over (Line.Key, Line.Pos). A consumer that saves those positions
// together with what the lines caused (gatehouse saves them with the
// jails' offence counts, in one atomic write) resumes after a restart or
// a crash exactly after the lines it counted: none lost, none twice.
//
// A source also saves positions itself through Positions: at most every
// SaveInterval (default 1s) while lines flow, after a rotation, a
// truncation or a tail start, and when Run returns. Those saves may lag
// the lines handed over; a consumer that saves Line.Pos keeps its own
// where the source's would move a file back (see proxy/checkpoint.go). A
// PositionFile alone (no consumer positions) repeats at most the lines of
// the last couple of seconds after a crash.
//
// # Files
//
// FileSource follows the files that its paths and globs name:
//
//   - rename + create (logrotate's default): the old file is read to its
//     end, also after the rename, while its writer may still append to it
//     (until it has been quiet for RotateGrace), and the new file is read
//     from its first byte;
//   - copytruncate: when a file is found shorter than the position, the
//     lines written between the last read and the truncation are read
//     from the copy, a sibling (same directory, name starting with the
//     file's name) whose first bytes hash as the file's did, then the file
//     is read from its first byte;
//   - at a restart the saved position (device, inode, offset and a hash
//     of the first up to 1 KiB) decides: the same file continues at the
//     offset; a file rotated while gatehouse was down is found among the
//     siblings (by inode, or by the hash for a copy) and read to its end
//     first; a reused inode or a truncated file (the hash differs) is read
//     from the start;
//   - a file that matches later (created, or its directory created) is
//     read from its first byte; files found at the very first start, with
//     no saved position, are read from the start too (fail2ban's default,
//     `head`) unless FileConfig.Tail;
//   - compressed rotations (.gz, .bz2, .xz, .zst, .lz4, .Z) are never
//     read, even if a glob names them;
//   - a glob should name the live files, not their rotations: renames
//     within a glob (log → log.1) are followed as the same file, but a
//     copytruncate copy that the glob matches is a new file, read whole;
//   - a partial last line is held until its newline; it is sent without
//     one only when its file has been rotated away and is quiet;
//   - at most FileConfig.MaxFiles files (default 512) are followed at
//     once, each with one open descriptor: the first in path order; the
//     others are not opened (logged once, ErrTooManyFiles from Check).
//
// The files already followed are read before new ones, and a file
// rotated away before its successor, so that the lines a rotated file got
// before its successor appeared come first. A file renamed away from a
// path it was read under, found at a restart, is followed as rotated away
// (its writer may still append to it) and the path's new file waits for
// it, as during a run.
//
// Changes are noticed through inotify on the files' directories (Linux,
// golang.org/x/sys/unix); every wake-up, and a poll every PollInterval
// in any case, re-examines the files (stat, read to the end). inotify
// only shortens the delay; correctness comes from the re-examination, so
// lost events, a full inotify queue, a directory created later or a
// platform without inotify cost latency, never lines.
//
// # Journal
//
// JournalSource runs `journalctl --follow --output=json` for its units
// (`_SYSTEMD_UNIT=`) and identifiers (`SYSLOG_IDENTIFIER=`), ORed, and
// restarts it with exponential backoff when it exits. It saves the
// cursor of the last line it handed over through Positions and passes it
// back with --after-cursor, rather than journalctl's --cursor-file:
// journalctl writes that file with the last entry it printed (not the
// last one gatehouse took from the pipe) and only when it exits cleanly,
// so a stop or a crash would lose or repeat entries.
//
// # Concurrency
//
// A source has one Run at a time; Check may be called concurrently with
// it. PositionFile is safe for concurrent use by several sources.
package watch
