complete -c announce -l endpoints -d 'etcd endpoints, comma separated (host:port or http(s)://host:port)' -r
complete -c announce -l cacert -d 'CA certificate (PEM) to verify etcd\'s server certificate' -r -F
complete -c announce -l cert -d 'client certificate (PEM) for TLS client authentication' -r -F
complete -c announce -l key -d 'client private key (PEM) for TLS client authentication' -r -F
complete -c announce -l user -d 'user and password for etcd authentication' -r
complete -c announce -l dial-timeout -d 'give up connecting to an endpoint after this long (e.g. 2s, 500ms, 1m30s; a bare number is seconds)' -r
complete -c announce -l command-timeout -d 'give up on a single request after this long (e.g. 5s, 1m30s; a bare number is seconds)' -r
complete -c announce -l ttl -d 'Lease TTL in seconds: the key outlives a crash by at most this long' -r
complete -c announce -l check-tcp -d 'Announce only while a TCP connection to HOST:PORT succeeds' -r
complete -c announce -l check-http -d 'Announce only while GET URL (http://) answers 2xx or 3xx' -r
complete -c announce -l check-exec -d 'Announce only while CMD exits 0; takes the following arguments up to a lone \';\' (or the end)' -r
complete -c announce -l check-interval -d 'Time between checks, and each check\'s timeout (e.g. 5s, 500ms, 1m30s; a bare number is seconds)' -r
complete -c announce -l check-failures -d 'Consecutive failed checks before the key is withdrawn' -r
complete -c announce -l once -d 'Put the key on a new lease, print the lease ID (hex) and exit without keeping it alive'
complete -c announce -l force -d 'Take the key over even when another process\'s lease holds it'
complete -c announce -s h -l help -d 'Print help (see more with \'--help\')'
complete -c announce -s V -l version -d 'Print version'
