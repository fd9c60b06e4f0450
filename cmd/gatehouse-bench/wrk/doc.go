// Package wrk reads the summary the wrk HTTP benchmarking tool prints
// with --latency (Parse): requests per second, completed requests, the
// 50th and 99th latency percentiles and the error counts. It parses text
// only and holds no state.
package wrk
