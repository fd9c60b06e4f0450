package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"gatehouse/proxy/config/fail2ban"
	"gatehouse/proxy/config/nginx"
)

// exitPartial is import's exit code when something was not carried over.
const exitPartial = 3

const importUsage = `usage: gatehouse import nginx FILE [--fail2ban DIR|JAIL.LOCAL] [-o OUT.yaml]
       gatehouse import fail2ban [DIR] [-o OUT.yaml]

import nginx translates an nginx config (following its includes) and,
optionally, fail2ban's configuration into a gatehouse config. import
fail2ban translates fail2ban's configuration directory (default
/etc/fail2ban: jail.conf, jail.d/, jail.local, filter.d/): every
enabled jail becomes a watch entry and a jail. The config goes to
OUT.yaml (default standard output); what could not be carried over is
listed on standard error as file:line: why, and counted.

Exit status: 0 everything was translated, 3 something was left out,
2 usage error or a config nginx -t would refuse (each refused directive
is named by file:line).
`

// importCmd runs "gatehouse import".
func importCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "fail2ban" {
		return importFail2ban(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "nginx" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, importUsage)
			return exitOK
		}
		fmt.Fprint(stderr, importUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("import nginx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage) }
	jail := fs.String("fail2ban", "", "fail2ban's configuration `DIR` (or its jail.local): HTTP jails become gatehouse jails, the others watch entries")
	out := fs.String("o", "", "write the config to `FILE` instead of standard output")
	// Flags may come before or after FILE.
	files, exit, ok := parseInterspersed(fs, args[1:])
	if !ok {
		return exit
	}
	if len(files) != 1 {
		fmt.Fprint(stderr, importUsage)
		return exitUsage
	}
	name, err := filepath.Abs(files[0])
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
		return exitUsage
	}
	cfg, err := nginx.LoadConfig(os.DirFS("/"), filepath.ToSlash(name))
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
		return exitUsage
	}
	var opts nginx.Options
	if *jail != "" {
		if abs, err := filepath.Abs(*jail); err == nil {
			*jail = abs
		}
		// A directory is fail2ban's whole configuration; a file is its
		// jail.local, whose directory is read too when it holds filter.d.
		dir, file := *jail, filepath.Join(*jail, "jail.local")
		if st, err := os.Stat(*jail); err == nil && !st.IsDir() {
			dir, file = filepath.Dir(*jail), *jail
			if st, err := os.Stat(filepath.Join(dir, "filter.d")); err != nil || !st.IsDir() {
				dir = ""
			}
		}
		if data, err := os.ReadFile(file); err == nil || file == *jail {
			if err != nil {
				fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
				return exitUsage
			}
			if opts.Fail2ban, err = fail2ban.Parse(file, data); err != nil {
				fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
				return exitUsage
			}
		}
		if dir != "" {
			if opts.Fail2banWatch, err = fail2ban.Import(os.DirFS(dir), fail2ban.ImportConfig{Dir: dir, Skip: nginx.HTTPJail}); err != nil {
				fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
				return exitUsage
			}
			// The HTTP jails are carried from jail.local; one enabled
			// only elsewhere (jail.d/*.conf) is said, never dropped.
			for _, d := range opts.Fail2banWatch.Skipped {
				if opts.Fail2ban == nil || !slices.ContainsFunc(opts.Fail2ban.Sections, func(s *fail2ban.Section) bool { return s.Name == d.Name }) {
					opts.Fail2banWatch.NotCarried = append(opts.Fail2banWatch.NotCarried, fail2ban.Finding{Pos: d.Src["enabled"],
						Msg: "jail " + d.Name + " is not carried: import nginx carries HTTP jails from jail.local, and this one is enabled elsewhere; copy its section to jail.local"})
				}
			}
		}
	}
	res, err := nginx.Translate(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
		return exitUsage
	}

	var notCarried []string
	for _, f := range res.Untranslated {
		notCarried = append(notCarried, f.String())
	}
	return writeImport(res.YAML, notCarried, *out, stdout, stderr)
}

// writeImport writes an imported config to out (standard output when
// empty) and lists what was not carried over; it returns the exit code.
func writeImport(yaml []byte, notCarried []string, out string, stdout, stderr io.Writer) int {
	if out == "" {
		if _, err := stdout.Write(yaml); err != nil {
			fmt.Fprintf(stderr, "gatehouse import: write config: %v\n", err)
			return exitRuntime
		}
	} else if err := os.WriteFile(out, yaml, 0o644); err != nil {
		fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
		return exitRuntime
	} else {
		fmt.Fprintf(stderr, "gatehouse import: wrote %s; check it with: gatehouse check -c %s\n", out, out)
	}
	if len(notCarried) == 0 {
		fmt.Fprintf(stderr, "gatehouse import: everything was carried over\n")
		return exitOK
	}
	fmt.Fprintf(stderr, "\nnot carried over:\n")
	for _, f := range notCarried {
		fmt.Fprintf(stderr, "%s\n", f)
	}
	fmt.Fprintf(stderr, "gatehouse import: %d not carried over (listed above and at the end of the config)\n", len(notCarried))
	return exitPartial
}

// parseInterspersed parses args with fs, flags before, between or after
// the operands, and returns the operands. When it stops the command
// instead (ok false), exit is the code to leave with: 0 after -h (fs
// has shown the usage), 2 for a flag fs refused (fs has said why).
func parseInterspersed(fs *flag.FlagSet, args []string) (operands []string, exit int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		if fs.NArg() == 0 {
			return operands, 0, true
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// importFail2ban runs "gatehouse import fail2ban [DIR]".
func importFail2ban(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import fail2ban", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage) }
	out := fs.String("o", "", "write the config to `FILE` instead of standard output")
	dirs, exit, ok := parseInterspersed(fs, args)
	if !ok {
		return exit
	}
	if len(dirs) > 1 {
		fmt.Fprint(stderr, importUsage)
		return exitUsage
	}
	dir := "/etc/fail2ban"
	if len(dirs) == 1 {
		dir = dirs[0]
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
		return exitUsage
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "gatehouse import: %s is not fail2ban's configuration directory\n", dir)
		return exitUsage
	}
	im, err := fail2ban.Import(os.DirFS(dir), fail2ban.ImportConfig{Dir: dir})
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
		return exitUsage
	}
	var notCarried []string
	for _, f := range im.NotCarried {
		notCarried = append(notCarried, f.String())
	}
	return writeImport(im.YAML(), notCarried, *out, stdout, stderr)
}
