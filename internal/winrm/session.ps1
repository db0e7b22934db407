# svcwatch-collector v2
# The persistent collector: Windows PowerShell 5.1, built-in cmdlets only.
# Contract: docs/internals.md, "The collector protocol (version 2)".
# The bootstrap command reads this script as one base64 line from stdin and
# runs it. script.go places the collection of collector.ps1 (version 1) in the
# function C before this loop, so there is one copy of it. Each later stdin
# line is one request, "W D N B": watermark, previous digest (64 hex, or 0),
# max events, look-back seconds. Only that exact form is accepted; the values
# reach C as numbers and hex, never as code. The answer is the version 1 JSON
# document on one line, then a newline. End of stdin ends the session.
$so=[Console]::OpenStandardOutput()
while($true){
    $l=[Console]::In.ReadLine()
    if($null -eq $l){break}
    if($l -cnotmatch '^([0-9]{1,19}) ([0-9a-f]{64}|0) ([0-9]{1,5}) ([0-9]{1,8})$'){
        [Console]::Error.WriteLine('svcwatch-collector: bad request line')
        exit 1
    }
    $rw=0L
    if(![long]::TryParse($Matches[1],[ref]$rw)){
        [Console]::Error.WriteLine('svcwatch-collector: bad request line')
        exit 1
    }
    $rd=$Matches[2]
    $rn=[int]$Matches[3]
    $rb=[long]$Matches[4]
    if($rn -lt 1 -or $rn -gt 10000 -or $rb -gt 31536000){
        [Console]::Error.WriteLine('svcwatch-collector: request out of range')
        exit 1
    }
    C $rw $rd $rn $rb
    $so.Write([byte[]]@(10),0,1)
}
