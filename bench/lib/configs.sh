# Config generators for bench/run.sh (sourced). Every file goes under $T (the run's temp dir); nothing
# touches /etc or the system's nginx/apache2/haproxy services. Ports are 127.0.0.1 only.
#
#   backends      nginx, 3 apps x 3 servers          127.0.0.1:19101-19103, 19201-19203, 19301-19303
#   (a) lb        https 20443, http 20080 (plain_http = "proxy")
#   (b) haproxy   https 21443 (TLS in HAProxy), http 21080
#   (c) chain     Apache https 22443 / http 22080  ->  HAProxy plain 22081  ->  backends
#   (d) nginx     https 23443, http 23080

APPS=(app1 app2 app3)
backend_port() { # app index 1..3, server index 1..3
  echo "19${1}0${2}"
}

# The fixed response: 1 KiB body (1023 'x' and a newline). X-Backend/X-Backend-Path let run.sh check
# routing, prefix strip and stickiness before loading.
write_backend_nginx() {
  local dir=$T/backend body
  mkdir -p "$dir/tmp"
  body=$(printf 'x%.0s' $(seq 1 1023))
  {
    echo "worker_processes 1;"
    echo "worker_rlimit_nofile 65536;"
    echo "pid $dir/nginx.pid;"
    echo "error_log $dir/error.log warn;"
    echo "events { worker_connections 16384; multi_accept on; }"
    echo "http {"
    echo "  access_log off; server_tokens off; default_type text/plain;"
    echo "  keepalive_requests 10000000; keepalive_timeout 300s;"
    echo "  client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy; fastcgi_temp_path $dir/tmp/fastcgi;"
    echo "  uwsgi_temp_path $dir/tmp/uwsgi; scgi_temp_path $dir/tmp/scgi;"
    echo "  server {"
    for a in 1 2 3; do for s in 1 2 3; do echo "    listen 127.0.0.1:$(backend_port $a $s) backlog=4096;"; done; done
    echo "    location / {"
    echo "      add_header X-Backend \$server_port;"
    echo "      add_header X-Backend-Path \$request_uri;"
    echo "      add_header X-Backend-Traceparent \$http_traceparent;"
    echo "      return 200 \"$body"
    echo "\";"
    echo "    }"
    echo "  }"
    echo "}"
  } > "$dir/nginx.conf"
}

write_tls() {
  mkdir -p "$T/tls"
  # TLS_KEY=rsa for RSA-2048, else ECDSA P-256. Measured with bench/handshakes.sh (2026-11-27), a whole new
  # connection (handshake, one request, close) costs lb or HAProxy 0.75-0.96 ms of the proxy's core with either key.
  local newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
  [[ ${TLS_KEY:-ec} == rsa ]] && newkey=(-newkey rsa:2048)
  openssl req -x509 "${newkey[@]}" -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$T/tls/lb.key" -out "$T/tls/lb.crt" 2>/dev/null
  cat "$T/tls/lb.crt" "$T/tls/lb.key" > "$T/tls/lb.pem"   # HAProxy wants cert + key in one file
  chmod 644 "$T/tls/"*
}

# (a) lb: samples/three-apps.toml with bench ports; persistence is lb's default (cookie SRVID, named values).
write_lb() {
  local dir=$T/lb
  mkdir -p "$dir"
  {
    echo '[node]'
    echo 'name = "bench"'
    # LB_WARM_UP (e.g. "5s"): lb's [node] warm_up; empty leaves it at its default.
    if [[ -n ${LB_WARM_UP:-} ]]; then echo "warm_up = \"$LB_WARM_UP\""; fi
    echo '[listen]'
    echo 'http  = "127.0.0.1:20080"'
    echo 'https = "127.0.0.1:20443"'
    echo 'plain_http = "proxy"'
    echo '[tls]'
    echo "cert = \"$T/tls/lb.crt\""
    echo "key  = \"$T/tls/lb.key\""
    echo '[defaults]'
    echo 'retries = 3'
    echo 'redispatch = true'
    echo 'timeout_connect = "5s"'
    echo 'timeout_client  = "50s"'
    echo 'timeout_server  = "50s"'
    for a in 1 2 3; do
      echo "[apps.app$a]"
      echo "servers = ["
      for s in 1 2 3; do echo "  { name = \"app${a}_$s\", address = \"127.0.0.1:$(backend_port $a $s)\" },"; done
      echo "]"
    done
  } > "$dir/lb.toml"
}

# (b) and (c): the seed's haproxy.cfg translated to HAProxy 2.x. `reqirep`/`rspirep` became
# `http-request replace-path` / `http-response replace-header`; `contimeout` etc. became `timeout ...`;
# `option httpclose` is dropped (keep-alive both sides, HAProxy's default). $1 = name, $2 = frontend binds.
write_haproxy() {
  local name=$1 binds=$2 dir=$T/$1
  mkdir -p "$dir"
  {
    cat <<EOF
global
    maxconn 8000
    nbthread 1
    node lb1
    spread-checks 5
    tune.ssl.default-dh-param 2048
    ssl-server-verify none

defaults
    mode http
    option dontlognull
    retries 3
    option redispatch
    maxconn 8000
    timeout connect 5s
    timeout client 50s
    timeout server 50s
    timeout http-keep-alive 50s

frontend web
$binds
    option forwardfor
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
EOF
    for app in "${APPS[@]}"; do
      echo "    acl want_$app path_beg /$app/"
      echo "    acl ${app}_avail nbsrv($app) ge 1"
    done
    for app in "${APPS[@]}"; do
      echo "    use_backend $app if want_$app ${app}_avail"
    done
    local a=0
    for app in "${APPS[@]}"; do
      a=$((a + 1))
      cat <<EOF

backend $app
    balance roundrobin
    cookie SRVID insert indirect nocache
    option nolinger
    http-request replace-path /$app(/.*) \1
    http-response replace-header Location ^http://([^/]*)/(.*)$ http://\1/$app/\2
    http-response replace-header Set-Cookie (.*;\ *[Pp]ath=)([^;\ ]+)(.*) \1/$app\2\3
    option httpchk
    http-check send meth GET uri / ver HTTP/1.0 hdr User-Agent HAProxy
EOF
      for s in 1 2 3; do
        echo "    server ${app}_$s 127.0.0.1:$(backend_port $a $s) cookie ${app}_$s check inter 10s rise 2 fall 2"
      done
    done
  } > "$dir/haproxy.cfg"
}

# (c) the seed's Apache: TLS vhost with its RewriteRules and ProxyPassReverse, proxying to HAProxy on 22081.
# The plain vhost proxies the same way (the seed's redirect-only port-80 vhost is not a throughput path).
# No access log (none of the proxies under test logs requests). MPM event sized to hold 1,000 connections;
# MaxKeepAliveRequests 0 (unlimited) so the client side keeps its connections as with the other proxies.
write_apache() {
  local dir=$T/apache m=/usr/lib/apache2/modules
  mkdir -p "$dir/run"
  local rules
  rules=$(cat <<'EOF'
        RewriteEngine On
        RewriteRule ^/([^/]+)$ %{REQUEST_SCHEME}://%{HTTP_HOST}/$1/ [R,L]
        RewriteRule ^/([^/]+)/(.*)$ http://127.0.0.1:22081/$1/$2 [P]
        ProxyPassReverse /app1/ http://127.0.0.1:22081/app1/
        ProxyPassReverse /app2/ http://127.0.0.1:22081/app2/
        ProxyPassReverse /app3/ http://127.0.0.1:22081/app3/
EOF
)
  cat > "$dir/apache2.conf" <<EOF
ServerRoot $dir
ServerName 127.0.0.1
PidFile $dir/apache2.pid
DefaultRuntimeDir $dir/run
Mutex file:$dir/run default
ErrorLog $dir/error.log
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule rewrite_module $m/mod_rewrite.so
LoadModule proxy_module $m/mod_proxy.so
LoadModule proxy_http_module $m/mod_proxy_http.so
LoadModule socache_shmcb_module $m/mod_socache_shmcb.so
LoadModule ssl_module $m/mod_ssl.so
StartServers 4
ServerLimit 16
ThreadLimit 64
ThreadsPerChild 64
MinSpareThreads 64
MaxSpareThreads 1024
MaxRequestWorkers 1024
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 50
Timeout 50
ListenBacklog 4096
Listen 127.0.0.1:22080
Listen 127.0.0.1:22443
SSLSessionCache shmcb:$dir/run/ssl_scache(512000)
<VirtualHost 127.0.0.1:22080>
$rules
</VirtualHost>
<VirtualHost 127.0.0.1:22443>
        SSLEngine on
        SSLProtocol -all +TLSv1.2 +TLSv1.3
        SSLCertificateFile $T/tls/lb.crt
        SSLCertificateKeyFile $T/tls/lb.key
$rules
</VirtualHost>
EOF
}

# (d) nginx as the TLS reverse proxy with the same behaviour: prefix routing and strip, Location and
# Set-Cookie path re-added, round robin, and HAProxy's `cookie SRVID insert indirect nocache` emulated with
# maps (open-source nginx has no sticky cookie): a known SRVID picks a one-server upstream, otherwise the
# app's round-robin upstream answers and the response gets Set-Cookie + Cache-Control: private; the
# SRVID pair is removed from the Cookie header sent to the backend. Upstream keep-alive on.
write_nginx_proxy() {
  local dir=$T/nginxproxy
  mkdir -p "$dir/tmp"
  {
    echo "worker_processes 1;"
    echo "worker_rlimit_nofile 65536;"
    echo "pid $dir/nginx.pid;"
    echo "error_log $dir/error.log warn;"
    echo "events { worker_connections 16384; multi_accept on; }"
    echo "http {"
    echo "  access_log off; server_tokens off;"
    echo "  keepalive_requests 10000000; keepalive_timeout 50s;"
    echo "  client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy; fastcgi_temp_path $dir/tmp/fastcgi;"
    echo "  uwsgi_temp_path $dir/tmp/uwsgi; scgi_temp_path $dir/tmp/scgi;"
    echo "  ssl_protocols TLSv1.2 TLSv1.3;"
    echo "  ssl_session_cache shared:SSL:10m;"
    echo "  map \$http_cookie \$cookie_for_backend {"
    echo "    \"~^(?<pre>.*?)(?:^|;\\s*)SRVID=[^;]*;?\\s*(?<post>.*)\$\" \"\$pre\$post\";"
    echo "    default \$http_cookie;"
    echo "  }"
    local a=0
    for app in "${APPS[@]}"; do
      a=$((a + 1))
      echo "  upstream $app {"
      for s in 1 2 3; do echo "    server 127.0.0.1:$(backend_port $a $s);"; done
      echo "    keepalive 64; keepalive_requests 10000000;"
      echo "  }"
      for s in 1 2 3; do
        echo "  upstream ${app}_$s { server 127.0.0.1:$(backend_port $a $s); keepalive 32; keepalive_requests 10000000; }"
      done
      echo "  map \$cookie_SRVID \$${app}_pin {"
      for s in 1 2 3; do echo "    ${app}_$s ${app}_$s;"; done
      echo "    default $app;"
      echo "  }"
      echo "  map \"\$${app}_pin:\$upstream_addr\" \$${app}_set_cookie {"
      for s in 1 2 3; do echo "    \"$app:127.0.0.1:$(backend_port $a $s)\" \"SRVID=${app}_$s; path=/$app/\";"; done
      echo "    default \"\";"
      echo "  }"
      echo "  map \$${app}_set_cookie \$${app}_cache_control { \"\" \"\"; default private; }"
    done
    for listen in "127.0.0.1:23443 ssl" "127.0.0.1:23080"; do
      echo "  server {"
      echo "    listen $listen backlog=4096;"
      if [[ $listen == *ssl ]]; then
        echo "    ssl_certificate $T/tls/lb.crt;"
        echo "    ssl_certificate_key $T/tls/lb.key;"
      fi
      for app in "${APPS[@]}"; do
        echo "    location = /$app { return 302 /$app/; }"
        echo "    location /$app/ {"
        echo "      rewrite ^/$app(/.*)\$ \$1 break;"
        echo "      proxy_pass http://\$${app}_pin;"
        echo "      proxy_http_version 1.1;"
        echo "      proxy_set_header Connection \"\";"
        echo "      proxy_set_header Host \$http_host;"
        echo "      proxy_set_header Cookie \$cookie_for_backend;"
        echo "      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;"
        echo "      proxy_set_header X-Forwarded-Proto \$scheme;"
        echo "      proxy_set_header X-Forwarded-Host \$http_host;"
        echo "      proxy_set_header X-Forwarded-Prefix /$app;"
        echo "      proxy_redirect ~^http://[^/]+/(.*)\$ \$scheme://\$http_host/$app/\$1;"
        echo "      proxy_redirect ~^/(.*)\$ /$app/\$1;"
        echo "      proxy_cookie_path ~^/(.*)\$ /$app/\$1;"
        echo "      add_header Set-Cookie \$${app}_set_cookie;"
        echo "      add_header Cache-Control \$${app}_cache_control;"
        echo "    }"
      done
      echo "    location / { return 404; }"
      echo "  }"
    done
    echo "}"
  } > "$dir/nginx.conf"
}
