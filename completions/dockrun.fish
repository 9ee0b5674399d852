complete -c dockrun -l name -d 'Container name: a letter or digit, then at least one of [a-zA-Z0-9_.-]; a container already holding it is removed first' -r
complete -c dockrun -s p -l publish -d 'Publish container ports: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO] (IPv6 as [::1]); either port may be a range (8000-8009:80-89); IP must be an IP address, not a name or an empty string' -r
complete -c dockrun -s e -l env -d 'Set an environment variable: KEY=VALUE, or KEY to copy it from dockrun\'s environment' -r
complete -c dockrun -l env-file -d 'Read environment variables from a file, one KEY=VALUE (or KEY) per line, # comments' -r -F
complete -c dockrun -s v -l volume -d 'Bind mount or volume: SRC:DST[:OPTS], or DST for an anonymous volume' -r
complete -c dockrun -l network -d 'Connect the container to this network (bridge, host, none, or a network name)' -r
complete -c dockrun -s l -l label -d 'Set a container label: KEY=VALUE or KEY' -r
complete -c dockrun -s u -l user -d 'User to run as inside the container: NAME|UID[:GROUP|GID]' -r
complete -c dockrun -s w -l workdir -d 'Working directory inside the container' -r
complete -c dockrun -l entrypoint -d 'Override the image\'s entrypoint ("" clears it)' -r
complete -c dockrun -s m -l memory -d 'Memory limit: bytes, or a number with b, k, m or g' -r
complete -c dockrun -l cpus -d 'Number of CPUs the container may use (e.g. 1.5)' -r
complete -c dockrun -l stop-timeout -d 'Seconds to wait after the stop signal before the engine kills the container' -r
complete -c dockrun -l stop-signal -d 'Signal that stops the container (e.g. SIGTERM, SIGQUIT, 3)' -r
complete -c dockrun -l engine-timeout -d 'Longest the engine may take to answer a call, and a pull may go without progress (e.g. 10s, 1m; 0: no limit)' -r
complete -c dockrun -l pull -d 'When to pull the image' -r -f -a "always\t'Pull every time, so a moved tag is followed'
missing\t'Pull only when the image is not present (docker run\'s default)'
never\t'Never pull: a missing image is an error'"
complete -c dockrun -l health-cmd -d 'Health check command, run with /bin/sh -c inside the container' -r
complete -c dockrun -l health-interval -d 'Time between health checks (e.g. 500ms, 30s, 1m30s; a bare number is seconds)' -r
complete -c dockrun -l health-timeout -d 'Longest a health check may run (e.g. 5s, 1m30s; a bare number is seconds)' -r
complete -c dockrun -l health-retries -d 'Consecutive failures that make the container unhealthy' -r
complete -c dockrun -l health-start-period -d 'Start-up time during which failures do not count (e.g. 1m, 90s; a bare number is seconds)' -r
complete -c dockrun -l notify -d 'When to send READY=1 to systemd: once running, or once the health check passes' -r -f -a "running\t'As soon as the container has started'
healthy\t'When the container\'s health check first passes'"
complete -c dockrun -s P -l publish-all -d 'Publish every port the image exposes on random host ports'
complete -c dockrun -l init -d 'Run an init (docker-init) as PID 1 that forwards signals and reaps zombies'
complete -c dockrun -l rm -d 'Remove the container when it ends (the default)'
complete -c dockrun -l keep -d 'Keep the container after it ends (for `docker logs` or `docker inspect`)'
complete -c dockrun -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dockrun -s V -l version -d 'Print version'
