# svcwatch-collector v1
# Windows PowerShell 5.1, built-in cmdlets only. The preamble line before this
# one sets $W (watermark), $D (previous digest: 64 hex, or '0' for none), $N (max events)
# and $B (look-back seconds); nothing else is ever placed in the script.
# Contract: docs/internals.md, "The collector protocol (version 1)".
#
# Size matters: the encoded command must fit cmd.exe's 8191-character command
# line, so script.go strips whole-line comments and indentation before sending
# and script_test.go enforces the bound. Keep one statement per line, no
# here-strings, no block comments.
$ErrorActionPreference='Stop'
$E=@()
function U($t){([datetime]$t).ToUniversalTime().ToString('o')}
try{
    $o=[ordered]@{v=1;host=[string]$env:COMPUTERNAME;now=(U ([datetime]::UtcNow))}
    # The log's bounds, size and retention tell a wrap from a clear.
    $g=[ordered]@{oldest=0;newest=0;records=0;max_bytes=0;retention=''}
    try{
        $l=Get-WinEvent -ListLog System
        $g.records=[long]$l.RecordCount
        $g.max_bytes=[long]$l.MaximumSizeInBytes
        $g.retention=([string]$l.LogMode).ToLowerInvariant()
        if($g.records -gt 0){
            $g.oldest=[long](Get-WinEvent -LogName System -MaxEvents 1 -Oldest).RecordId
            $g.newest=[long](Get-WinEvent -LogName System -MaxEvents 1).RecordId
        }
    }catch{$E+='log: '+$_.Exception.Message}
    $o.log=$g
    # Events after the watermark, oldest first; one more than asked tells "more".
    # A watermark past the newest record means the log was reset: start over.
    $w=[long]$W
    $q=''
    if($g.newest -gt 0 -and $w -gt $g.newest){$w=0}elseif($w -eq 0){$q=' and TimeCreated[timediff(@SystemTime) <= '+([long]$B*1000)+']'}
    $r=@()
    try{$r=@(Get-WinEvent -LogName System -FilterXPath ('*[System[(EventID=7045 or EventID=104 or EventID=7040) and EventRecordID > '+$w+$q+']]') -Oldest -MaxEvents ($N+1))}catch{if($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*'){$E+='events: '+$_.Exception.Message}}
    $o.events=@(foreach($e in @($r|select -First $N)){[ordered]@{id=$e.Id;rec=[long]$e.RecordId;time=(U $e.TimeCreated);sid=[string]$e.UserId;data=[string[]]@($e.Properties|%{[string]$_.Value})}})
    $o.more=$r.Count -gt $N
    # State is cheap from the SCM; drivers come from GetDevices.
    $st=@{}
    try{foreach($c in @(Get-Service -EA SilentlyContinue)+@([ServiceProcess.ServiceController]::GetDevices())){$st[$c.ServiceName]=[string]$c.Status}}catch{$E+='state: '+$_.Exception.Message}
    # Services and drivers from the registry, values unexpanded. An unreadable
    # Services key fails the whole run: an empty inventory would read as removals.
    $R='DoNotExpandEnvironmentNames'
    $root=Get-Item HKLM:\SYSTEM\CurrentControlSet\Services
    $a=@(foreach($nm in $root.GetSubKeyNames()){
        try{
            $k=$root.OpenSubKey($nm)
            $t=$k.GetValue('Type')
            if($t -isnot [int] -or !($t -band 0x3B)){continue}
            # An unreadable Parameters key leaves dll empty rather than dropping the service.
            $dll=''
            try{$p=$k.OpenSubKey('Parameters');if($p){$dll=[string]$p.GetValue('ServiceDll','',$R)}}catch{}
            [ordered]@{name=$nm;display=[string]$k.GetValue('DisplayName','',$R);path=[string]$k.GetValue('ImagePath','',$R);dll=$dll;start=[int]$k.GetValue('Start',-1);delayed=$k.GetValue('DelayedAutostart',0) -eq 1;account=[string]$k.GetValue('ObjectName','');type=$t;state=[string]$st[$nm]}
        }catch{$E+="service ${nm}: "+$_.Exception.Message}
    })
    # Digest: sorted by upper-cased name (ordinal); fields joined by U+001F, records by U+001E.
    $n=[string[]]@($a|%{$_.name.ToUpperInvariant()})
    if($a.Length -gt 1){[Array]::Sort($n,$a,[StringComparer]::Ordinal)}
    $s=@(foreach($v in $a){($v.name,$v.display,$v.path,$v.dll,$v.start,[int]$v.delayed,$v.account,$v.type) -join [char]0x1F}) -join [char]0x1E
    $o.digest=-join([Security.Cryptography.SHA256]::Create().ComputeHash([Text.Encoding]::UTF8.GetBytes($s))|%{$_.ToString('x2')})
    $o.changed=$o.digest -ne $D
    if($o.changed){$o.services=$a}
    if($E){$o.errors=[string[]]$E}
    # Raw UTF-8 bytes on stdout (an unbuffered stream), whatever the console code page.
    $b=[Text.Encoding]::UTF8.GetBytes((ConvertTo-Json -InputObject $o -Compress -Depth 5))
    [Console]::OpenStandardOutput().Write($b,0,$b.Length)
}catch{
    [Console]::Error.WriteLine('svcwatch-collector: '+$_.Exception.Message)
    exit 1
}
