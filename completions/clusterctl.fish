# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_clusterctl_global_optspecs
    string join \n endpoints= cacert= cert= key= user= dial-timeout= command-timeout= prefix= h/help V/version
end

function __fish_clusterctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_clusterctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_clusterctl_using_subcommand
    set -l cmd (__fish_clusterctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c clusterctl -n "__fish_clusterctl_needs_command" -l endpoints -d 'etcd endpoints, comma separated (host:port or http(s)://host:port)' -r
complete -c clusterctl -n "__fish_clusterctl_needs_command" -l cacert -d 'CA certificate (PEM) to verify etcd\'s server certificate' -r -F
complete -c clusterctl -n "__fish_clusterctl_needs_command" -l cert -d 'client certificate (PEM) for TLS client authentication' -r -F
complete -c clusterctl -n "__fish_clusterctl_needs_command" -l key -d 'client private key (PEM) for TLS client authentication' -r -F
complete -c clusterctl -n "__fish_clusterctl_needs_command" -l user -d 'user and password for etcd authentication' -r
complete -c clusterctl -n "__fish_clusterctl_needs_command" -l dial-timeout -d 'give up connecting to an endpoint after this long (e.g. 2s, 500ms, 1m30s; a bare number is seconds)' -r
complete -c clusterctl -n "__fish_clusterctl_needs_command" -l command-timeout -d 'give up on a single request after this long (e.g. 5s, 1m30s; a bare number is seconds)' -r
complete -c clusterctl -n "__fish_clusterctl_needs_command" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -s V -l version -d 'Print version'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "submit" -d 'Store unit files (templates too) in the cluster, inactive'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "cat" -d 'Print a submitted unit file (an instance as expanded from its template)'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "load" -d 'Place units on machines without starting them (desired state: loaded)'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "start" -d 'Place and start units, with their Requires=/Wants=/BindsTo= (desired state: launched)'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "stop" -d 'Stop units, leaving them on their machines (desired state: loaded)'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "unload" -d 'Take units off their machines (desired state: inactive)'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "destroy" -d 'Remove units from the cluster; the scheduler takes them off their machines'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "list-unit-files" -d 'List every submitted unit: UNIT HASH DSTATE STATE TARGET'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "list-units" -d 'List units placed on machines: UNIT MACHINE ACTIVE SUB'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "list-machines" -d 'List the machines present: MACHINE IP METADATA'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "list-announcements" -d 'List announced keys with their values and lease TTLs: KEY VALUE TTL'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "status" -d 'Show `systemctl status` of units on their machines (over ssh unless local)'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "journal" -d 'Show a unit\'s journal on its machine (over ssh unless local)'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "ssh" -d 'Open a shell, or run a command, on a machine or a unit\'s machine'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "agent" -d 'Run this machine\'s agent: keep it present, run the units assigned to it, report their states'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "grant-machine" -d 'Create an etcd role and user that confine machine ID\'s agent to its own keys'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "revoke-machine" -d 'Remove the role and user that grant-machine created for machine ID'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "grant-scheduler" -d 'Create an etcd role and user for a scheduler: read the cluster, write assign/ and its election'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "schedule" -d 'Run the scheduler: one round, or --watch to lead and react to changes'
complete -c clusterctl -n "__fish_clusterctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand submit" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand submit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand cat" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand cat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand load" -l block-attempts -d 'give up (exit 1) after N checks, one every 500 ms; 0 waits for ever' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand load" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand load" -l no-block -d 'do not wait for the cluster to reach the state'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand load" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand start" -l block-attempts -d 'give up (exit 1) after N checks, one every 500 ms; 0 waits for ever' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand start" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand start" -l no-block -d 'do not wait for the cluster to reach the state'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand stop" -l block-attempts -d 'give up (exit 1) after N checks, one every 500 ms; 0 waits for ever' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand stop" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand stop" -l no-block -d 'do not wait for the cluster to reach the state'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand unload" -l block-attempts -d 'give up (exit 1) after N checks, one every 500 ms; 0 waits for ever' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand unload" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand unload" -l no-block -d 'do not wait for the cluster to reach the state'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand unload" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand destroy" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand destroy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-unit-files" -l fields -d 'columns to print, comma separated (see COLUMNS below)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-unit-files" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-unit-files" -l no-legend -d 'do not print the header line'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-unit-files" -s l -l full -d 'do not shorten machine IDs and hashes'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-unit-files" -l json -d 'JSON Lines instead of a table (all columns, full values)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-unit-files" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-units" -l fields -d 'columns to print, comma separated (see COLUMNS below)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-units" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-units" -l no-legend -d 'do not print the header line'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-units" -s l -l full -d 'do not shorten machine IDs and hashes'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-units" -l json -d 'JSON Lines instead of a table (all columns, full values)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-units" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-machines" -l fields -d 'columns to print, comma separated (see COLUMNS below)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-machines" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-machines" -l no-legend -d 'do not print the header line'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-machines" -s l -l full -d 'do not shorten machine IDs and hashes'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-machines" -l json -d 'JSON Lines instead of a table (all columns, full values)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-machines" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-announcements" -l fields -d 'columns to print, comma separated (see COLUMNS below)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-announcements" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-announcements" -l no-legend -d 'do not print the header line'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-announcements" -s l -l full -d 'do not shorten machine IDs and hashes'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-announcements" -l json -d 'JSON Lines instead of a table (all columns, full values)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand list-announcements" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -l ssh-username -d 'log in as this user [default: ssh\'s, your local user or ~/.ssh/config\'s]' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -l ssh-port -d 'the machines\' ssh port' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -l tunnel -d 'reach the machine through this jump host (ssh -J)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -l known-hosts-file -d 'known-hosts file to check the machines\' host keys against' -r -F
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -l strict-host-key-checking -d 'refuse a machine whose host key is unknown or changed (ssh\'s StrictHostKeyChecking)' -r -f -a "true\t''
false\t''"
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -l ssh-timeout -d 'give up connecting after this long (e.g. 10s)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -s A -l forward-agent -d 'forward your ssh agent to the machine (ssh -A)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -s n -l lines -d 'how many of the last lines to show' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -l ssh-username -d 'log in as this user [default: ssh\'s, your local user or ~/.ssh/config\'s]' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -l ssh-port -d 'the machines\' ssh port' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -l tunnel -d 'reach the machine through this jump host (ssh -J)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -l known-hosts-file -d 'known-hosts file to check the machines\' host keys against' -r -F
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -l strict-host-key-checking -d 'refuse a machine whose host key is unknown or changed (ssh\'s StrictHostKeyChecking)' -r -f -a "true\t''
false\t''"
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -l ssh-timeout -d 'give up connecting after this long (e.g. 10s)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -s f -l follow -d 'keep showing new lines as they come'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -s A -l forward-agent -d 'forward your ssh agent to the machine (ssh -A)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand journal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -l ssh-username -d 'log in as this user [default: ssh\'s, your local user or ~/.ssh/config\'s]' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -l ssh-port -d 'the machines\' ssh port' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -l tunnel -d 'reach the machine through this jump host (ssh -J)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -l known-hosts-file -d 'known-hosts file to check the machines\' host keys against' -r -F
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -l strict-host-key-checking -d 'refuse a machine whose host key is unknown or changed (ssh\'s StrictHostKeyChecking)' -r -f -a "true\t''
false\t''"
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -l ssh-timeout -d 'give up connecting after this long (e.g. 10s)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -s A -l forward-agent -d 'forward your ssh agent to the machine (ssh -A)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand ssh" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand agent" -l machine-id -d 'this machine\'s ID [default: the contents of /etc/machine-id]' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand agent" -l public-ip -d 'the address shown for this machine [default: the local address that routes to the first etcd endpoint]' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand agent" -l metadata -d 'metadata for MachineMetadata=, fleet\'s form: region=us-west,disk=ssd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand agent" -l ttl -d 'seconds the machine stays present after its agent stops renewing (its lease TTL): a machine that dies or is cut off for longer has its units moved' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand agent" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand agent" -l fence -d 'stop this machine\'s units once its lease cannot be renewed for a TTL (at most one copy of a unit anywhere, at the price of stopping everything when etcd itself is down)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand agent" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-machine" -l announce -d 'also let the machine\'s units announce under this etcd prefix (readwrite; absolute; may be given more than once), e.g. /announce/services/ for the tutorial\'s sidekicks' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-machine" -l username -d 'the user\'s name [default: the role\'s name, fleetkit-machine-ID or fleetkit-scheduler-NAME]' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-machine" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-machine" -l password-stdin -d 'read the user\'s password from stdin\'s first line'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-machine" -l no-password -d 'no password: the user logs in by TLS client certificate, whose CN is the user\'s name'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-machine" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand revoke-machine" -l username -d 'the user\'s name, if grant-machine was given --username' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand revoke-machine" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand revoke-machine" -s h -l help -d 'Print help'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-scheduler" -l username -d 'the user\'s name [default: the role\'s name, fleetkit-machine-ID or fleetkit-scheduler-NAME]' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-scheduler" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-scheduler" -l password-stdin -d 'read the user\'s password from stdin\'s first line'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-scheduler" -l no-password -d 'no password: the user logs in by TLS client certificate, whose CN is the user\'s name'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand grant-scheduler" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand schedule" -l ttl -d 'seconds a dead scheduler keeps its leadership (its lease TTL)' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand schedule" -l prefix -d 'where fleetkit\'s keys live in etcd' -r
complete -c clusterctl -n "__fish_clusterctl_using_subcommand schedule" -l watch -d 'keep running: campaign, and while leading react to every change'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand schedule" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "submit" -d 'Store unit files (templates too) in the cluster, inactive'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "cat" -d 'Print a submitted unit file (an instance as expanded from its template)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "load" -d 'Place units on machines without starting them (desired state: loaded)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "start" -d 'Place and start units, with their Requires=/Wants=/BindsTo= (desired state: launched)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "stop" -d 'Stop units, leaving them on their machines (desired state: loaded)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "unload" -d 'Take units off their machines (desired state: inactive)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "destroy" -d 'Remove units from the cluster; the scheduler takes them off their machines'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "list-unit-files" -d 'List every submitted unit: UNIT HASH DSTATE STATE TARGET'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "list-units" -d 'List units placed on machines: UNIT MACHINE ACTIVE SUB'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "list-machines" -d 'List the machines present: MACHINE IP METADATA'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "list-announcements" -d 'List announced keys with their values and lease TTLs: KEY VALUE TTL'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "status" -d 'Show `systemctl status` of units on their machines (over ssh unless local)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "journal" -d 'Show a unit\'s journal on its machine (over ssh unless local)'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "ssh" -d 'Open a shell, or run a command, on a machine or a unit\'s machine'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "agent" -d 'Run this machine\'s agent: keep it present, run the units assigned to it, report their states'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "grant-machine" -d 'Create an etcd role and user that confine machine ID\'s agent to its own keys'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "revoke-machine" -d 'Remove the role and user that grant-machine created for machine ID'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "grant-scheduler" -d 'Create an etcd role and user for a scheduler: read the cluster, write assign/ and its election'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "schedule" -d 'Run the scheduler: one round, or --watch to lead and react to changes'
complete -c clusterctl -n "__fish_clusterctl_using_subcommand help; and not __fish_seen_subcommand_from submit cat load start stop unload destroy list-unit-files list-units list-machines list-announcements status journal ssh agent grant-machine revoke-machine grant-scheduler schedule help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
