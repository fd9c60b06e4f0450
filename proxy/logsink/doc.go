// Package logsink holds the access logs' destinations: standard output
// and the files named by log.access_file and hosts[].log.access_file.
//
// Each destination is one Sink, an io.Writer that the access log
// middleware writes whole lines to; lines are buffered and flushed by
// Set.Run every 200 milliseconds, so a file costs one write per buffer
// and a tool tailing it (fail2ban) sees a line within that delay. Hosts
// naming the same file share its Sink. Set.Reopen opens the files afresh
// (logrotate, SIGHUP, reload) and closes the ones no longer named; a
// write failure is logged once, never returned to the request.
//
// It knows nothing of the config file or the log format: package proxy
// asks the Set for the sink of each configured path. Set and Sink are
// safe for concurrent use.
package logsink
