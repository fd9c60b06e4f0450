package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/term"

	"gatehouse/middleware/htpasswd"
)

// Exit codes of `gatehouse htpasswd`, Apache htpasswd's (support/htpasswd.c).
const (
	htExitOK          = 0
	htExitFile        = 1 // the file cannot be read or written
	htExitUsage       = 2
	htExitVerify      = 3 // the passwords differ, or -v: wrong password
	htExitInterrupted = 4
	htExitTooLong     = 5 // user name or password too long
	htExitBadUser     = 6 // invalid user name, or -v: unknown user
	htExitInvalidFile = 7 // the file is not a valid htpasswd file
)

const htpasswdUsage = `usage: gatehouse htpasswd [--follow] [-cimB25sDv] [-C cost] [-r rounds] FILE USER
       gatehouse htpasswd [--follow] -b[cmB25sDv] [-C cost] [-r rounds] FILE USER PASSWORD
       gatehouse htpasswd -n[imB25s] [-C cost] [-r rounds] USER
       gatehouse htpasswd -nb[mB25s] [-C cost] [-r rounds] USER PASSWORD

Apache htpasswd-compatible, except that new passwords are hashed with bcrypt
by default (Apache's default is MD5). Flags can be combined, as in -cb or -nbB.
 -c  create FILE (an existing FILE is replaced by one holding only USER,
     if it is empty or an htpasswd file; any other file is refused)
 -n  don't update a file; print "USER:hash" on standard output
 -b  take PASSWORD from the command line (it shows in ps and shell history)
 -i  read the password from standard input, without verification (scripts)
 -B  bcrypt (the default)
 -C  bcrypt cost, 4 to 17 (default 10; Apache's is 5)
 -m  apr1-MD5 (weak: for files shared with old tools)
 -s  SHA-1 (unsalted, weak: for files shared with old tools)
 -2  SHA-256-crypt
 -5  SHA-512-crypt
 -r  SHA-crypt rounds, 1000 to 1000000 (default 5000)
 -D  delete USER
 -v  verify USER's password
 --follow  edit the file a symlink FILE points to; without it a symlink is
     refused (FILE is opened with O_NOFOLLOW)
 -d (DES crypt) and -p (plain text) are refused: gatehouse does not load them.
Without -b or -i the password is asked for twice on the terminal, without echo.
FILE's existing lines must all be htpasswd entries (or blank, or comments):
other files are never edited. An empty password is refused by the gateway.
Exit status: 0 ok, 1 file problem, 2 usage, 3 passwords differ or verification
failed, 4 interrupted, 5 input too long, 6 bad or unknown user, 7 FILE is not
a valid htpasswd file.
`

// htpasswdOptions is the parsed command line of `gatehouse htpasswd`.
type htpasswdOptions struct {
	create, noFile, batch, fromStdin, del, verify bool
	follow                                        bool // --follow: edit through a symlink

	format     htpasswd.Format // 0: bcrypt
	formatFlag byte            // the flag that chose format, for messages
	cost       int             // 0: default; only with bcrypt
	rounds     int             // 0: default; only with SHA-crypt
	costFlag   bool
	roundsFlag bool

	file, user, password string
}

// htpasswdCmd runs `gatehouse htpasswd args…` and returns its exit status.
// Prompts go to stderr and read stdin: without echo when stdin is a
// terminal, as lines otherwise. Results go to stdout (-n) and messages,
// as with Apache's htpasswd, to stderr.
func htpasswdCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, code := parseHtpasswdArgs(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(o.user) > htpasswd.MaxUserLen {
		fmt.Fprintf(stderr, "gatehouse htpasswd: user name too long (> %d bytes)\n", htpasswd.MaxUserLen)
		return htExitTooLong
	}
	if err := htpasswd.ValidateUser(o.user); err != nil {
		fmt.Fprintf(stderr, "gatehouse htpasswd: %v\n", err)
		return htExitBadUser
	}
	pr := &passwordReader{stdin: stdin, stderr: stderr}
	switch {
	case o.verify:
		return htpasswdVerify(o, pr, stderr)
	case o.del:
		return htpasswdDelete(o, stderr)
	}
	return htpasswdSet(o, pr, stdout, stderr)
}

// parseHtpasswdArgs parses Apache-style flags (combinable, options before
// operands, -C and -r taking a value attached or as the next argument).
// code is -1 to go on, or the exit status to return.
func parseHtpasswdArgs(args []string, stdout, stderr io.Writer) (o htpasswdOptions, code int) {
	usageErr := func(format string, a ...any) (htpasswdOptions, int) {
		fmt.Fprintf(stderr, "gatehouse htpasswd: "+format+"\n\n", a...)
		fmt.Fprint(stderr, htpasswdUsage)
		return o, htExitUsage
	}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		switch a {
		case "-h", "-help", "--help":
			fmt.Fprint(stdout, htpasswdUsage)
			return o, htExitOK
		case "--follow":
			o.follow = true
			continue
		}
		if strings.HasPrefix(a, "--") {
			return usageErr("unknown option %s", a)
		}
	flags:
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 'c':
				o.create = true
			case 'n':
				o.noFile = true
			case 'b':
				o.batch = true
			case 'i':
				o.fromStdin = true
			case 'D':
				o.del = true
			case 'v':
				o.verify = true
			case 'B', 'm', 's', '2', '5':
				f := htpasswdFormat(c)
				if o.format != 0 && o.format != f {
					return usageErr("-%c and -%c options conflict: choose one hash format", o.formatFlag, c)
				}
				o.format, o.formatFlag = f, c
			case 'C', 'r':
				val := a[j+1:]
				if val == "" {
					if i+1 == len(args) {
						return usageErr("-%c needs a value", c)
					}
					i++
					val = args[i]
				}
				n, err := strconv.Atoi(val)
				if c == 'C' {
					// Apache's htpasswd refuses -C 18 too; the gateway
					// refuses such hashes unless allow_slow_hashes.
					if err != nil || n < 4 || n > htpasswd.MaxSafeBcryptCost {
						return usageErr("-C: bcrypt cost %q is not a number from 4 to %d", val, htpasswd.MaxSafeBcryptCost)
					}
					o.cost, o.costFlag = n, true
				} else {
					// Apache goes up to 999999999; the gateway refuses more
					// than MaxSafeSHACryptRounds unless allow_slow_hashes,
					// so such an entry is not made here.
					if err != nil || n < htpasswd.MinSHACryptRounds || n > htpasswd.MaxSafeSHACryptRounds {
						return usageErr("-r: rounds %q is not a number from %d to %d", val, htpasswd.MinSHACryptRounds, htpasswd.MaxSafeSHACryptRounds)
					}
					o.rounds, o.roundsFlag = n, true
				}
				break flags
			case 'd':
				return usageErr("-d (DES crypt) is not supported: it is insecure (only 8 password characters count) and gatehouse refuses to load such entries; use -B")
			case 'p':
				return usageErr("-p (plain text) is not supported: gatehouse refuses to load plain-text passwords; use -B")
			default:
				return usageErr("unknown option -%c", c)
			}
		}
	}
	operands := args[i:]

	for _, c := range []struct {
		a, b   bool
		fa, fb string
	}{
		{o.create, o.noFile, "c", "n"},
		{o.create, o.verify, "c", "v"},
		{o.create, o.del, "c", "D"},
		{o.noFile, o.verify, "n", "v"},
		{o.noFile, o.del, "n", "D"},
		{o.verify, o.del, "v", "D"},
		{o.batch, o.fromStdin, "b", "i"},
		{o.del, o.batch, "D", "b"},
		{o.del, o.fromStdin, "D", "i"},
		{o.noFile, o.follow, "n", "-follow"},
	} {
		if c.a && c.b {
			return usageErr("-%s and -%s options conflict", c.fa, c.fb)
		}
	}
	if !o.verify && !o.del {
		if o.costFlag && o.format != 0 && o.format != htpasswd.FormatBcrypt {
			return usageErr("-C applies to bcrypt (-B) only")
		}
		if o.roundsFlag && o.format != htpasswd.FormatSHA256Crypt && o.format != htpasswd.FormatSHA512Crypt {
			return usageErr("-r applies to SHA-crypt (-2, -5) only")
		}
	}

	want := 2 // FILE USER
	if o.noFile {
		want = 1
	}
	if o.batch {
		want++
	}
	if len(operands) != want {
		return usageErr("want %d arguments after the options, got %d", want, len(operands))
	}
	if !o.noFile {
		o.file, operands = operands[0], operands[1:]
	}
	o.user = operands[0]
	if o.batch {
		o.password = operands[1]
	}
	return o, -1
}

// htpasswdFormat returns the hash format a flag letter (B, m, s, 2, 5)
// selects.
func htpasswdFormat(c byte) htpasswd.Format {
	switch c {
	case 'm':
		return htpasswd.FormatAPR1
	case 's':
		return htpasswd.FormatSHA1
	case '2':
		return htpasswd.FormatSHA256Crypt
	case '5':
		return htpasswd.FormatSHA512Crypt
	}
	return htpasswd.FormatBcrypt
}

// htpasswdSet hashes a new password and prints it (-n) or stores it.
func htpasswdSet(o htpasswdOptions, pr *passwordReader, stdout, stderr io.Writer) int {
	if !o.noFile && !o.follow {
		// Refuse a symlink before asking for a password; SetUser refuses
		// it again (O_NOFOLLOW) should one appear in between.
		if st, err := os.Lstat(o.file); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			return editError(o.file, htpasswd.ErrSymlink, stderr)
		}
	}
	if !o.noFile && !o.create {
		// Fail before asking for a password, as Apache does.
		if _, err := os.Stat(o.file); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(stderr, "gatehouse htpasswd: cannot modify file %s; use '-c' to create it\n", o.file)
			} else {
				fmt.Fprintf(stderr, "gatehouse htpasswd: %v\n", err)
			}
			return htExitFile
		}
	}
	password := o.password
	switch {
	case o.batch:
	case o.fromStdin:
		p, err := pr.line()
		if err != nil {
			return passwordError(err, stderr)
		}
		password = p
	default:
		p, err := pr.prompt("New password: ")
		if err != nil {
			return passwordError(err, stderr)
		}
		again, err := pr.prompt("Re-type new password: ")
		if err != nil {
			return passwordError(err, stderr)
		}
		if p != again {
			fmt.Fprintln(stderr, "gatehouse htpasswd: password verification error")
			return htExitVerify
		}
		password = p
	}

	limit := htpasswd.MaxPasswordLen
	if o.format == 0 || o.format == htpasswd.FormatBcrypt {
		limit = htpasswd.MaxBcryptPasswordLen
	}
	if len(password) > limit {
		fmt.Fprintf(stderr, "gatehouse htpasswd: password too long (> %d bytes)", limit)
		if limit == htpasswd.MaxBcryptPasswordLen {
			fmt.Fprint(stderr, "; bcrypt ignores the rest; use -5 for a longer password")
		}
		fmt.Fprintln(stderr)
		return htExitTooLong
	}
	if password == "" {
		fmt.Fprintf(stderr, "gatehouse htpasswd: warning: the password is empty; the gateway refuses empty passwords, so %s cannot log in\n", o.user)
	}

	var hash string
	var err error
	switch o.format {
	case htpasswd.FormatAPR1:
		hash, err = htpasswd.HashAPR1(password)
	case htpasswd.FormatSHA1:
		fmt.Fprintln(stderr, "gatehouse htpasswd: warning: {SHA} is unsalted SHA-1, fast to brute-force and the same for equal passwords; prefer -B")
		hash, err = htpasswd.HashSHA1(password)
	case htpasswd.FormatSHA256Crypt:
		hash, err = htpasswd.HashSHA256Crypt(password, o.rounds)
	case htpasswd.FormatSHA512Crypt:
		hash, err = htpasswd.HashSHA512Crypt(password, o.rounds)
	default:
		hash, err = htpasswd.HashBcrypt(password, o.cost)
	}
	if err != nil {
		// The length and the cost were checked above: nothing the user
		// can fix is left.
		fmt.Fprintf(stderr, "gatehouse htpasswd: %v\n", err)
		return htExitFile
	}

	if o.noFile {
		fmt.Fprintf(stdout, "%s:%s\n", o.user, hash)
		return htExitOK
	}
	replaced, err := htpasswd.SetUser(o.file, o.user, hash, htpasswd.EditConfig{Create: o.create, FollowSymlinks: o.follow})
	if err != nil {
		return editError(o.file, err, stderr)
	}
	if replaced {
		fmt.Fprintf(stderr, "Updating password for user %s\n", o.user)
	} else {
		fmt.Fprintf(stderr, "Adding password for user %s\n", o.user)
	}
	// SetUser keeps other entries as they are, including ones the gateway
	// refuses: say so now rather than at the next reload.
	if _, err := htpasswd.Load(o.file); err != nil {
		fmt.Fprintf(stderr, "gatehouse htpasswd: warning: gatehouse will not load %s:\n%v\n", o.file, err)
	}
	return htExitOK
}

// htpasswdDelete removes a user (-D).
func htpasswdDelete(o htpasswdOptions, stderr io.Writer) int {
	found, err := htpasswd.DeleteUser(o.file, o.user, htpasswd.EditConfig{FollowSymlinks: o.follow})
	if err != nil {
		return editError(o.file, err, stderr)
	}
	if found {
		fmt.Fprintf(stderr, "Deleting password for user %s\n", o.user)
	} else {
		fmt.Fprintf(stderr, "User %s not found\n", o.user)
	}
	return htExitOK
}

// htpasswdVerify checks a user's password (-v) the way the gateway would:
// the whole file must load.
func htpasswdVerify(o htpasswdOptions, pr *passwordReader, stderr io.Writer) int {
	f, err := htpasswd.Load(o.file)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "gatehouse htpasswd: %v\n", err)
		return htExitFile
	}
	if err != nil {
		return editError(o.file, err, stderr)
	}
	e, ok := f.Lookup(o.user)
	if !ok {
		fmt.Fprintf(stderr, "User %s not found\n", o.user)
		return htExitBadUser
	}
	password := o.password
	switch {
	case o.batch:
	case o.fromStdin:
		password, err = pr.line()
	default:
		password, err = pr.prompt("Enter password: ")
	}
	if err != nil {
		return passwordError(err, stderr)
	}
	if !e.Verify(password) {
		fmt.Fprintln(stderr, "gatehouse htpasswd: password verification failed")
		return htExitVerify
	}
	fmt.Fprintf(stderr, "Password for user %s correct.\n", o.user)
	return htExitOK
}

// editError reports an error from reading or editing file and returns the
// exit status: 7 for a file that is not a valid htpasswd file, 1 for the
// rest.
func editError(file string, err error, stderr io.Writer) int {
	var errs htpasswd.Errors
	if errors.As(err, &errs) {
		fmt.Fprintln(stderr, errs)
		fmt.Fprintf(stderr, "gatehouse htpasswd: %s is not a valid htpasswd file\n", file)
		return htExitInvalidFile
	}
	if errors.Is(err, htpasswd.ErrSymlink) {
		fmt.Fprintf(stderr, "gatehouse htpasswd: %s is a symbolic link; refusing to follow it (use --follow to edit the file it points to)\n", file)
		return htExitFile
	}
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "gatehouse htpasswd: cannot modify file %s; use '-c' to create it\n", file)
		return htExitFile
	}
	fmt.Fprintf(stderr, "gatehouse htpasswd: %v\n", err)
	return htExitFile
}

var (
	errPasswordTooLong = errors.New("password too long")
	errInterrupted     = errors.New("interrupted")
)

// passwordError reports a failure to read a password and returns the exit
// status.
func passwordError(err error, stderr io.Writer) int {
	switch {
	case errors.Is(err, errPasswordTooLong):
		fmt.Fprintf(stderr, "gatehouse htpasswd: password too long (> %d bytes)\n", htpasswd.MaxPasswordLen)
		return htExitTooLong
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(stderr, "gatehouse htpasswd: interrupted")
		return htExitInterrupted
	}
	fmt.Fprintf(stderr, "gatehouse htpasswd: read password: %v\n", err)
	return htExitFile
}

// passwordReader reads passwords from stdin: without echo after a prompt
// when it is a terminal, else one line at a time.
type passwordReader struct {
	stdin  io.Reader
	stderr io.Writer
	br     *bufio.Reader // for lines; made on first use
}

// prompt asks for a password. On a terminal it shows msg on stderr and
// turns echo off; otherwise it reads a line silently, for scripts.
func (p *passwordReader) prompt(msg string) (string, error) {
	if f, ok := p.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(p.stderr, msg)
		pw, err := readTerminalPassword(int(f.Fd()))
		fmt.Fprintln(p.stderr)
		if err == nil && len(pw) > htpasswd.MaxPasswordLen {
			err = errPasswordTooLong
		}
		return pw, err
	}
	return p.line()
}

// line reads one line from stdin without its "\n" or "\r\n". A last line
// without a line end counts; no input at all is an error.
func (p *passwordReader) line() (string, error) {
	if p.br == nil {
		p.br = bufio.NewReaderSize(p.stdin, htpasswd.MaxPasswordLen+2)
	}
	line, err := p.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", errPasswordTooLong
	case errors.Is(err, io.EOF) && len(line) == 0:
		return "", errors.New("no password on standard input")
	case err != nil && !errors.Is(err, io.EOF):
		return "", err
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line) > htpasswd.MaxPasswordLen {
		return "", errPasswordTooLong
	}
	return string(line), nil
}

// readTerminalPassword reads a password from the terminal fd with echo
// off. term.ReadPassword cannot be cancelled and does not restore the
// terminal when the process is killed, so on SIGINT or SIGTERM we restore
// it ourselves and return errInterrupted; the reading goroutine then stays
// blocked until the command returns and the process exits.
func readTerminalPassword(fd int) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	type result struct {
		pw  []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		pw, err := term.ReadPassword(fd)
		done <- result{pw, err}
	}()
	select {
	case r := <-done:
		return string(r.pw), r.err
	case <-sig:
		_ = term.Restore(fd, state) // best effort: we are exiting either way
		return "", errInterrupted
	}
}
