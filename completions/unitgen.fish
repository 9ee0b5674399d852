complete -c unitgen -s i -l instances -d 'Instances for templates: 1..3, {1..3}, 01..10 (zero padded), 3..1, a,b,c, or - (one per line on stdin). Range ends are whole numbers 0 to 2^64-1; a malformed range (1.., ..3, 1...3, -5..3) is an error. Repeatable; plain units ignore them' -r
complete -c unitgen -s o -l output -d 'Write each unit to DIR/NAME (atomically) instead of printing it' -r -F
complete -c unitgen -l format -d 'What to print on stdout' -r -f -a "json\t'One JSON record per unit (JSON Lines)'
unit\t'The expanded unit files, each after a `# NAME` line'"
complete -c unitgen -l name -d 'Unit name for a unit read from stdin (-), e.g. web@.service' -r
complete -c unitgen -l force -d 'Overwrite files in DIR whose contents differ'
complete -c unitgen -l escape -d 'Escape instance strings as systemd-escape does (10.0.0.1/24 -> 10.0.0.1-24)'
complete -c unitgen -l check -d 'Only parse and validate; print every problem as FILE:LINE: message'
complete -c unitgen -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unitgen -s V -l version -d 'Print version'
