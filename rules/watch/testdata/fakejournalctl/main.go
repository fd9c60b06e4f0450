// Command fakejournalctl stands in for journalctl in the supervision
// test: it prints five journal entries after the one named by
// --after-cursor=c=N (or from 0) and exits with status 1, as a
// journalctl that dies would.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	next := 0
	for _, a := range os.Args[1:] {
		if c, ok := strings.CutPrefix(a, "--after-cursor=c="); ok {
			n, err := strconv.Atoi(c)
			if err != nil {
				os.Exit(2)
			}
			next = n + 1
		}
	}
	for i := next; i < next+5; i++ {
		// MESSAGE as a byte array every other entry, as journalctl
		// prints a value that is not clean UTF-8 text.
		msg := fmt.Sprintf("%q", fmt.Sprintf("entry %d", i))
		if i%2 == 1 {
			var b []string
			for _, c := range []byte(fmt.Sprintf("entry %d", i)) {
				b = append(b, strconv.Itoa(int(c)))
			}
			msg = "[" + strings.Join(b, ",") + "]"
		}
		fmt.Printf(`{"__CURSOR":"c=%d","__REALTIME_TIMESTAMP":"%d","MESSAGE":%s,"_PID":"%d","SYSLOG_IDENTIFIER":"sshd","_HOSTNAME":"h"}`+"\n", i, 1700000000000000+i, msg, 100+i)
	}
	fmt.Fprintln(os.Stderr, "fake journalctl exits")
	os.Exit(1)
}
