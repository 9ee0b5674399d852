complete -c place -l machines -d 'Machine records, one JSON object per line ({"id","ip","metadata"})' -r -F
complete -c place -l current -d 'Current placements to keep where their rules still hold ({"unit","machine"} lines)' -r -F
complete -c place -l format -d 'Output format' -r -f -a "json\t'One JSON object per line'
table\t'UNIT MACHINE IP columns'"
complete -c place -s h -l help -d 'Print help (see more with \'--help\')'
complete -c place -s V -l version -d 'Print version'
