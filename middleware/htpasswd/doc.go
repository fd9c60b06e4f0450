// Package htpasswd reads, verifies, hashes and edits Apache htpasswd files,
// the credential store behind gatehouse's basic auth (DESIGN.md, "Basic
// auth") and the `gatehouse htpasswd` command.
//
// It owns the file format and the password hash formats, nothing else: the
// middleware decides when to ask for credentials, caches successful checks
// and reports failures to the auth jail; proxy decides when to reload.
//
// # File format
//
// One entry per line, `user:hash`. Blank lines and comments (lines whose
// first non-blank character is '#') are allowed; CRLF line ends, trailing
// blanks and a UTF-8 byte order mark at the start are tolerated, as
// Apache's config reader tolerates the first two. Lines are at most
// MaxLineLen bytes. User names are case-sensitive, at most MaxUserLen bytes
// of UTF-8 without ':', whitespace, control or invisible formatting
// characters (see ValidateUser).
// Parse is strict where Apache is lenient: a malformed line, a duplicated
// user, a hash gatehouse cannot verify and extra `:field`s after the hash
// are all errors. Every problem is collected and reported together, one
// `name:line: message` each (see Errors), like a compiler, so an operator
// fixes the whole file in one pass.
//
// # Hash formats
//
// Verified: bcrypt ($2y$, $2a$, $2b$, cost 4–31; above MaxSafeBcryptCost
// only with ParseConfig.AllowSlowHashes), Apache's apr1-MD5
// ($apr1$), {SHA} (unsalted base64 SHA-1) and SHA-crypt ($5$, $6$, with an
// optional rounds=N$, per Drepper's "Unix crypt using SHA-256 and SHA-512";
// above MaxSafeSHACryptRounds only with AllowSlowHashes: ErrSlowHash).
// Refused when the file is loaded, naming the file, the line and the format:
// DES crypt (only 8 password characters count), MD5-crypt ($1$), other
// crypt(3) schemes (yescrypt, scrypt, Argon2, …) and plain text. New
// entries should be bcrypt (HashBcrypt); the other Hash functions exist for
// compatibility with files shared with Apache.
//
// Entry.Verify compares the derived value in constant time. bcrypt and
// SHA-crypt are deliberately slow (Entry.Expensive reports it), so callers
// bound how many such checks run at once. Passwords longer than
// MaxPasswordLen never verify: SHA-crypt's cost grows with the password's
// length, and no real password is that long. To make unknown users cost
// what known ones do, verify them against File.Dummy (or DummyEntry),
// which is never a slow hash. The empty password never verifies;
// Entry.EmptyPassword finds entries made from it.
//
// # Editing
//
// SetUser and DeleteUser rewrite a file atomically (temporary file in the
// same directory, fsync, rename, fsync of the directory), keeping every
// other byte: comments, blank lines, other users, line ends and whether
// the file ends with a newline. Every existing line must be blank, a
// comment or an entry whose hash is a password hash, so a file that is
// not an htpasswd file is never written. A symlink is refused (the file is
// opened with O_NOFOLLOW, ErrSymlink) unless EditConfig.FollowSymlinks:
// then the file it points to is replaced and the link stays. A file the
// caller may not write is
// refused, although renaming over it would work. The file's mode and
// owner are kept; when that takes root (chown) and the caller is not, the
// edit fails rather than hand the file to the caller. New files are
// created 0640 — owner read-write, group read (the gateway's group),
// nothing for others — regardless of the umask, where Apache's htpasswd
// creates 0644 minus the umask. There is no locking: two concurrent
// editors of one file race and the last rename wins, as with Apache's
// htpasswd.
//
// # Concurrency
//
// A parsed *File and its Entry values are immutable and safe for
// concurrent use; File.Dummy computes its entry once, on first use. The
// package has no global state.
package htpasswd
