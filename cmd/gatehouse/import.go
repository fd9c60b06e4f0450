package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gatehouse/proxy/config/fail2ban"
	"gatehouse/proxy/config/nginx"
)

// exitPartial is import's exit code when something was not carried over.
const exitPartial = 3

const importUsage = `usage: gatehouse import nginx FILE [--fail2ban JAIL.LOCAL] [-o OUT.yaml]

Translates an nginx config (following its includes) and, optionally, a
fail2ban jail file into a gatehouse config. The config goes to OUT.yaml
(default standard output); what could not be carried over is listed on
standard error as file:line: directive: why, and counted.

Exit status: 0 everything was translated, 3 something was left out,
2 usage error or a config nginx -t would refuse (each refused directive
is named by file:line).
`

// importCmd runs "gatehouse import".
func importCmd(args []string, stdout, stderr io.Writer) int {
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
	jail := fs.String("fail2ban", "", "fail2ban jail `FILE` (jail.local) whose enabled jails become gatehouse jails")
	out := fs.String("o", "", "write the config to `FILE` instead of standard output")
	// Flags may come before or after FILE.
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
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
		data, err := os.ReadFile(*jail)
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
			return exitUsage
		}
		if opts.Fail2ban, err = fail2ban.Parse(*jail, data); err != nil {
			fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
			return exitUsage
		}
	}
	res, err := nginx.Translate(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
		return exitUsage
	}

	if *out == "" {
		if _, err := stdout.Write(res.YAML); err != nil {
			fmt.Fprintf(stderr, "gatehouse import: write config: %v\n", err)
			return exitRuntime
		}
	} else if err := os.WriteFile(*out, res.YAML, 0o644); err != nil {
		fmt.Fprintf(stderr, "gatehouse import: %v\n", err)
		return exitRuntime
	} else {
		fmt.Fprintf(stderr, "gatehouse import: wrote %s; check it with: gatehouse check -c %s\n", *out, *out)
	}
	if len(res.Untranslated) == 0 {
		fmt.Fprintf(stderr, "gatehouse import: everything was carried over\n")
		return exitOK
	}
	fmt.Fprintf(stderr, "\nnot carried over:\n")
	for _, f := range res.Untranslated {
		fmt.Fprintf(stderr, "%s\n", f)
	}
	fmt.Fprintf(stderr, "gatehouse import: %d not carried over (listed above and at the end of the config)\n", len(res.Untranslated))
	return exitPartial
}
