package nginx

import (
	"strings"

	"gatehouse/proxy/config/nginx/conf"
)

// The tables below are never mutated.

// ignoredMain are main-context directives about running nginx itself
// (processes, users, files, modules): gatehouse needs nothing from them,
// so dropping them changes no request's answer.
var ignoredMain = setOf(
	"user", "worker_processes", "worker_rlimit_nofile", "worker_cpu_affinity", "worker_priority",
	"worker_shutdown_timeout", "worker_rlimit_core", "working_directory", "pid", "error_log",
	"load_module", "daemon", "master_process", "pcre_jit", "thread_pool", "timer_resolution",
	"env", "lock_file", "debug_points", "ssl_engine",
)

// ignoredHTTP are http/server/location directives whose job gatehouse
// does by itself or that tune nginx's internals: buffers, hash sizes,
// timeouts it has safe defaults for, TLS protocol settings (gatehouse
// offers TLS 1.2+ with Go's cipher suites), temp paths, and the like.
var ignoredHTTP = setOf(
	"sendfile", "sendfile_max_chunk", "tcp_nopush", "tcp_nodelay", "types_hash_max_size",
	"types_hash_bucket_size", "server_names_hash_bucket_size", "server_names_hash_max_size",
	"variables_hash_max_size", "variables_hash_bucket_size", "proxy_headers_hash_max_size",
	"proxy_headers_hash_bucket_size", "map_hash_max_size", "map_hash_bucket_size", "default_type",
	"server_tokens", "ssl_protocols", "ssl_ciphers", "ssl_prefer_server_ciphers", "ssl_session_cache",
	"ssl_session_timeout", "ssl_session_tickets", "ssl_dhparam", "ssl_ecdh_curve", "ssl_stapling",
	"ssl_stapling_verify", "ssl_trusted_certificate", "ssl_buffer_size", "ssl_early_data", "http2",
	"resolver", "resolver_timeout", "proxy_http_version", "proxy_redirect", "proxy_buffering",
	"proxy_buffers", "proxy_buffer_size", "proxy_busy_buffers_size",
	"proxy_send_timeout", "proxy_next_upstream",
	"proxy_next_upstream_tries", "proxy_next_upstream_timeout", "proxy_max_temp_file_size",
	"proxy_temp_file_write_size", "proxy_ssl_server_name", "proxy_ssl_name", "proxy_ssl_protocols",
	"proxy_socket_keepalive", "keepalive_timeout", "keepalive_requests", "keepalive_time",
	"client_header_timeout", "send_timeout", "client_body_buffer_size",
	"client_header_buffer_size", "large_client_header_buffers", "client_body_temp_path",
	"proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path",
	"open_file_cache", "open_file_cache_valid", "open_file_cache_min_uses", "open_file_cache_errors",
	"reset_timedout_connection", "log_not_found", "log_subrequest", "absolute_redirect",
	"server_name_in_redirect", "port_in_redirect", "msie_padding", "msie_refresh", "lingering_close",
	"lingering_time", "lingering_timeout", "aio", "aio_write", "directio", "output_buffers",
	"postpone_output", "ignore_invalid_headers", "merge_slashes",
	"limit_req_log_level", "ssl", "underscores_in_headers",
	"types",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// reasons says why a directive (or directives starting with a prefix
// ending in "_" or "*") cannot be carried over.
var reasons = []struct {
	names []string
	why   string
}{
	{[]string{"rewrite", "rewrite_log", "uninitialized_variable_warn"}, "rewrites: gatehouse passes paths to the upstream unchanged; rewrite in the app"},
	{[]string{"map", "geo", "split_clients", "set", "perl_set", "js_set"}, "variables: gatehouse has none; its rules are the config sections"},
	{[]string{"if"}, "conditions on variables: gatehouse has none besides the hotlink, secure-link and https-redirect idioms"},
	{[]string{"lua_*", "*_by_lua", "*_by_lua_block", "*_by_lua_file", "perl", "perl_modules", "perl_require", "js_*"}, "scripts: gatehouse runs no Lua, Perl or njs"},
	{[]string{"fastcgi_*", "uwsgi_*", "scgi_*", "grpc_*", "memcached_*"}, "gatehouse proxies to HTTP(S) upstreams only; put an HTTP server (php-fpm behind one, uwsgi --http …) in front of the app"},
	{[]string{"proxy_cache*", "proxy_no_cache", "proxy_store*", "expires", "etag", "if_modified_since"}, "caching: gatehouse caches nothing; the upstream sets its own cache headers"},
	{[]string{"gzip*", "brotli*", "gunzip"}, "compression: gatehouse does not compress responses; the upstream can"},
	{[]string{"root", "alias", "index", "try_files", "autoindex*", "error_page", "internal", "random_index", "mp4*", "flv", "charset", "source_charset", "override_charset", "charset_types", "ssi*", "addition_types", "add_before_body", "add_after_body"},
		"files and error pages: gatehouse serves no files; run a file server as an upstream"},
	{[]string{"return"}, "a server-level return answers every path before any location; gatehouse answers per route (routes[].respond): write one for the paths it should answer"},
	{[]string{"auth_request", "auth_request_set", "auth_jwt*", "auth_delay"}, "subrequest authentication: gatehouse does basic auth only"},
	{[]string{"limit_conn", "limit_conn_zone", "limit_conn_status", "limit_conn_log_level", "limit_rate", "limit_rate_after"}, "connection and bandwidth limits: gatehouse caps connections per client globally (limits), not per zone"},
	{[]string{"sub_filter*", "xslt_*", "image_filter*"}, "response rewriting: gatehouse passes bodies unchanged"},
	{[]string{"ssl_client_certificate", "ssl_verify_client", "ssl_verify_depth", "ssl_crl", "ssl_ocsp*", "ssl_password_file", "proxy_ssl_certificate", "proxy_ssl_certificate_key", "proxy_ssl_verify", "proxy_ssl_trusted_certificate"}, "client and upstream certificates: gatehouse does not do mutual TLS"},
	{[]string{"limit_except"}, "per-method rules: gatehouse has none"},
	{[]string{"stream", "mail"}, "gatehouse proxies HTTP(S) only, not TCP/UDP streams or mail"},
	{[]string{"mirror", "mirror_request_body", "post_action"}, "request mirroring: gatehouse has none"},
	{[]string{"stub_status", "vhost_traffic_status*"}, "status pages: gatehouse's are /metrics and /healthz on the admin listener"},
	{[]string{"dav_*", "create_full_put_path", "min_delete_depth"}, "WebDAV: gatehouse serves no files"},
	{[]string{"proxy_pass_request_headers", "proxy_pass_request_body", "proxy_pass_header", "proxy_ignore_headers", "proxy_intercept_errors", "proxy_method", "proxy_set_body", "proxy_cookie_*", "proxy_bind"}, "gatehouse passes requests and responses as they are, apart from its forwarding and security headers"},
	{[]string{"more_set_headers", "more_clear_headers", "more_set_input_headers", "more_clear_input_headers"}, "headers-more: gatehouse edits response headers with hosts[].headers and routes[].headers"},
	{[]string{"modsecurity", "modsecurity_rules", "modsecurity_rules_file", "naxsi_*"}, "WAF rules: gatehouse blocks probes and bans, it is no WAF"},
	{[]string{"real_ip_header"}, "gatehouse reads the client address from X-Forwarded-For sent by trusted_proxies"},
	{[]string{"secure_link", "secure_link_md5", "secure_link_secret"}, "nginx's MD5 secure links cannot be carried over"},
	{[]string{"location"}, "this location's rules have no gatehouse route equivalent"},
	{[]string{"upstream"}, "upstream blocks become hosts[].upstreams where proxy_pass names them"},
}

// why explains why d was not carried over.
func why(d *conf.Directive) string {
	for _, r := range reasons {
		for _, n := range r.names {
			if matchName(n, d.Name) {
				return r.why
			}
		}
	}
	return "no gatehouse equivalent"
}

// matchName matches a directive name against "name", "prefix*" or
// "*suffix".
func matchName(pattern, name string) bool {
	switch {
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(name, strings.TrimSuffix(pattern, "*"))
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(name, strings.TrimPrefix(pattern, "*"))
	}
	return pattern == name
}
