package winhost

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// catalog is the service and driver inventory of a stock Windows Server 2022
// (Hyper-V / VMware guest, Defender, Edge), written from the registry values
// of HKLM\SYSTEM\CurrentControlSet\Services. One entry per line:
//
//	roles|name|display|image path|ServiceDll|start|delayed|account|type
//
// roles: "*" every host, "dc" domain controllers only, "ms" member servers
// only; a trailing "+" also puts the entry in the small inventory used by fast
// tests. Image paths: "svchost:<group>" expands to the svchost command line,
// "drv:<file>" to \SystemRoot\System32\drivers\<file>, "bootdrv:<file>" to
// System32\drivers\<file> (how boot-start drivers are registered).
const catalog = `
*+|AJRouter|AllJoyn Router Service|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\AJRouter.dll|3|0|NT AUTHORITY\LocalService|32
*|ALG|Application Layer Gateway Service|%SystemRoot%\System32\alg.exe||3|0|NT AUTHORITY\LocalService|16
*|AppIDSvc|Application Identity|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\appidsvc.dll|3|0|NT Authority\LocalService|32
*+|Appinfo|Application Information|svchost:netsvcs -p|%SystemRoot%\System32\appinfo.dll|3|0|LocalSystem|32
*|AppMgmt|Application Management|svchost:netsvcs -p|%SystemRoot%\System32\appmgmts.dll|3|0|LocalSystem|32
*|AppReadiness|App Readiness|svchost:AppReadiness -p|%SystemRoot%\system32\AppReadiness.dll|3|0|LocalSystem|32
*|AppVClient|Microsoft App-V Client|%systemroot%\system32\AppVClient.exe||4|0|LocalSystem|16
*|AppXSvc|AppX Deployment Service (AppXSVC)|svchost:wsappx -p|%SystemRoot%\system32\appxdeploymentserver.dll|3|0|LocalSystem|32
*|AudioEndpointBuilder|Windows Audio Endpoint Builder|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\AudioEndpointBuilder.dll|3|0|LocalSystem|32
*|Audiosrv|Windows Audio|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\Audiosrv.dll|3|0|NT AUTHORITY\LocalService|32
*|AxInstSV|ActiveX Installer (AxInstSV)|svchost:AxInstSVGroup|%SystemRoot%\System32\AxInstSV.dll|3|0|LocalSystem|32
*+|BFE|Base Filtering Engine|svchost:LocalServiceNoNetworkFirewall -p|%SystemRoot%\System32\bfe.dll|2|0|NT AUTHORITY\LocalService|32
*+|BITS|Background Intelligent Transfer Service|svchost:netsvcs -p|%SystemRoot%\System32\qmgr.dll|3|0|LocalSystem|32
*|BrokerInfrastructure|Background Tasks Infrastructure Service|svchost:DcomLaunch -p|%SystemRoot%\System32\psmsrv.dll|2|0|LocalSystem|32
*|BTAGService|Bluetooth Audio Gateway Service|svchost:LocalServiceNetworkRestricted|%SystemRoot%\System32\BTAGService.dll|3|0|NT AUTHORITY\LocalService|32
*|BthAvctpSvc|AVCTP service|svchost:LocalService -p|%SystemRoot%\System32\BthAvctpSvc.dll|3|0|NT AUTHORITY\LocalService|32
*|bthserv|Bluetooth Support Service|svchost:LocalService -p|%SystemRoot%\System32\bthserv.dll|3|0|NT AUTHORITY\LocalService|32
*|camsvc|Capability Access Manager Service|svchost:appmodel -p|%SystemRoot%\system32\CapabilityAccessManager.dll|3|0|LocalSystem|32
*|CDPSvc|Connected Devices Platform Service|svchost:LocalService -p|%SystemRoot%\System32\CDPSvc.dll|2|1|NT AUTHORITY\LocalService|32
*|CertPropSvc|Certificate Propagation|svchost:netsvcs|%SystemRoot%\System32\certprop.dll|3|0|LocalSystem|32
*|ClipSVC|Client License Service (ClipSVC)|svchost:wsappx -p|%SystemRoot%\System32\ClipSVC.dll|3|0|LocalSystem|32
*|COMSysApp|COM+ System Application|%SystemRoot%\system32\dllhost.exe /Processid:{02D4B3F1-FD88-11D1-960D-00805FC79235}||3|0|LocalSystem|16
*|CoreMessagingRegistrar|CoreMessaging|svchost:LocalServiceNoNetwork -p|%SystemRoot%\system32\coremessaging.dll|2|0|NT AUTHORITY\LocalService|32
*+|CryptSvc|Cryptographic Services|svchost:NetworkService -p|%SystemRoot%\system32\cryptsvc.dll|2|0|NT Authority\NetworkService|32
*|CscService|Offline Files|svchost:LocalSystemNetworkRestricted -p|%windir%\System32\cscsvc.dll|4|0|LocalSystem|32
*+|DcomLaunch|DCOM Server Process Launcher|svchost:DcomLaunch -p|%SystemRoot%\system32\rpcss.dll|2|0|LocalSystem|32
*|defragsvc|Optimize drives|svchost:defragsvc|%SystemRoot%\System32\defragsvc.dll|3|0|localSystem|16
*|DeviceAssociationService|Device Association Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\system32\das.dll|3|0|LocalSystem|32
*|DeviceInstall|Device Install Service|svchost:DcomLaunch -p|%SystemRoot%\system32\umpnpmgr.dll|3|0|LocalSystem|32
*|DevQueryBroker|DevQuery Background Discovery Broker|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\system32\DevQueryBroker.dll|3|0|LocalSystem|32
*+|Dhcp|DHCP Client|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\system32\dhcpcore.dll|2|0|NT Authority\LocalService|32
*|diagnosticshub.standardcollector.service|Microsoft (R) Diagnostics Hub Standard Collector Service|%SystemRoot%\system32\DiagSvcs\DiagnosticsHub.StandardCollector.Service.exe||3|0|LocalSystem|16
*|DiagTrack|Connected User Experiences and Telemetry|svchost:utcsvc -p|%SystemRoot%\system32\diagtrack.dll|2|0|LocalSystem|16
*|DispBrokerDesktopSvc|Display Policy Service|svchost:LocalService -p|%SystemRoot%\System32\DispBroker.Desktop.dll|2|1|NT AUTHORITY\LocalService|32
*|DmEnrollmentSvc|Device Management Enrollment Service|svchost:netsvcs -p|%SystemRoot%\system32\Windows.Internal.Management.dll|3|0|LocalSystem|32
*|dmwappushservice|Device Management Wireless Application Protocol (WAP) Push message Routing Service|svchost:netsvcs -p|%SystemRoot%\system32\dmwappushsvc.dll|3|0|LocalSystem|32
*+|Dnscache|DNS Client|svchost:NetworkService -p|%SystemRoot%\System32\dnsrslvr.dll|2|0|NT AUTHORITY\NetworkService|32
*|DoSvc|Delivery Optimization|svchost:NetworkService -p|%SystemRoot%\system32\dosvc.dll|2|1|NT Authority\NetworkService|32
*|DPS|Diagnostic Policy Service|svchost:LocalServiceNoNetwork -p|%SystemRoot%\system32\dps.dll|2|0|NT AUTHORITY\LocalService|32
*|DsmSvc|Device Setup Manager|svchost:netsvcs -p|%SystemRoot%\System32\DeviceSetupManager.dll|3|0|LocalSystem|32
*|DsSvc|Data Sharing Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\dssvc.dll|3|0|LocalSystem|32
*|DusmSvc|Data Usage|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\dusmsvc.dll|2|0|NT Authority\LocalService|32
*|Eaphost|Extensible Authentication Protocol|svchost:netsvcs -p|%SystemRoot%\System32\eapsvc.dll|3|0|localSystem|32
*+|edgeupdate|Microsoft Edge Update Service (edgeupdate)|"C:\Program Files (x86)\Microsoft\EdgeUpdate\MicrosoftEdgeUpdate.exe" /svc||2|1|LocalSystem|16
*|edgeupdatem|Microsoft Edge Update Service (edgeupdatem)|"C:\Program Files (x86)\Microsoft\EdgeUpdate\MicrosoftEdgeUpdate.exe" /medsvc||3|0|LocalSystem|16
*|EFS|Encrypting File System (EFS)|%SystemRoot%\System32\lsass.exe||3|0|LocalSystem|32
*|embeddedmode|Embedded Mode|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\embeddedmodesvc.dll|3|0|LocalSystem|32
*+|EventLog|Windows Event Log|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\wevtsvc.dll|2|0|NT AUTHORITY\LocalService|32
*|EventSystem|COM+ Event System|svchost:LocalService -p|%SystemRoot%\system32\es.dll|2|0|NT AUTHORITY\LocalService|32
*|fdPHost|Function Discovery Provider Host|svchost:LocalService -p|%SystemRoot%\system32\fdPHost.dll|3|0|NT AUTHORITY\LocalService|32
*|FDResPub|Function Discovery Resource Publication|svchost:LocalServiceAndNoImpersonation -p|%SystemRoot%\system32\fdrespub.dll|3|0|NT AUTHORITY\LocalService|32
*|FontCache|Windows Font Cache Service|svchost:LocalService -p|%SystemRoot%\system32\FntCache.dll|2|0|NT AUTHORITY\LocalService|32
*|FrameServer|Windows Camera Frame Server|svchost:Camera|%systemroot%\system32\FrameServer.dll|3|0|LocalSystem|32
*+|gpsvc|Group Policy Client|svchost:netsvcs -p|%SystemRoot%\System32\gpsvc.dll|2|0|LocalSystem|32
*|GraphicsPerfSvc|GraphicsPerfSvc|svchost:GraphicsPerfSvcGroup|%SystemRoot%\System32\GraphicsPerfSvc.dll|3|0|LocalSystem|32
*|hidserv|Human Interface Device Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\hidserv.dll|3|0|LocalSystem|32
*|HvHost|HV Host Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\hvhostsvc.dll|3|0|LocalSystem|32
*|icssvc|Windows Mobile Hotspot Service|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\tetheringservice.dll|3|0|NT Authority\LocalService|32
*|IKEEXT|IKE and AuthIP IPsec Keying Modules|svchost:netsvcs -p|%SystemRoot%\System32\ikeext.dll|3|0|LocalSystem|32
*|InstallService|Microsoft Store Install Service|svchost:netsvcs -p|%SystemRoot%\system32\InstallService.dll|3|0|LocalSystem|32
*|iphlpsvc|IP Helper|svchost:NetSvcs -p|%SystemRoot%\System32\iphlpsvc.dll|2|0|LocalSystem|32
*|KeyIso|CNG Key Isolation|%SystemRoot%\system32\lsass.exe||3|0|LocalSystem|32
*|KPSSVC|KDC Proxy Server service (KPS)|svchost:KpsSvcGroup|%SystemRoot%\System32\kpssvc.dll|3|0|NT AUTHORITY\NetworkService|32
*|KtmRm|KtmRm for Distributed Transaction Coordinator|svchost:NetworkServiceAndNoImpersonation -p|%SystemRoot%\system32\msdtckrm.dll|3|0|NT AUTHORITY\NetworkService|32
*+|LanmanServer|Server|svchost:netsvcs -p|%SystemRoot%\system32\srvsvc.dll|2|0|LocalSystem|32
*+|LanmanWorkstation|Workstation|svchost:NetworkService -p|%SystemRoot%\System32\wkssvc.dll|2|0|NT AUTHORITY\NetworkService|32
*|lfsvc|Geolocation Service|svchost:netsvcs -p|%SystemRoot%\system32\lfsvc.dll|3|0|LocalSystem|32
*|LicenseManager|Windows License Manager Service|svchost:LocalService -p|%SystemRoot%\system32\LicenseManagerSvc.dll|3|0|NT Authority\LocalService|32
*|lltdsvc|Link-Layer Topology Discovery Mapper|svchost:LocalService -p|%SystemRoot%\System32\lltdsvc.dll|3|0|NT AUTHORITY\LocalService|32
*|lmhosts|TCP/IP NetBIOS Helper|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\lmhsvc.dll|3|0|NT AUTHORITY\LocalService|32
*|LSM|Local Session Manager|svchost:DcomLaunch -p|%SystemRoot%\System32\lsm.dll|2|0|LocalSystem|32
*|LxpSvc|Language Experience Service|svchost:netsvcs|%SystemRoot%\system32\LanguageOverlayServer.dll|3|0|LocalSystem|32
*|MapsBroker|Downloaded Maps Manager|svchost:NetworkService -p|%SystemRoot%\System32\moshost.dll|4|0|NT AUTHORITY\NetworkService|32
*|MicrosoftEdgeElevationService|Microsoft Edge Elevation Service (MicrosoftEdgeElevationService)|"C:\Program Files (x86)\Microsoft\Edge\Application\131.0.2903.70\elevation_service.exe"||3|0|LocalSystem|16
*+|mpssvc|Windows Defender Firewall|svchost:LocalServiceNoNetworkFirewall -p|%SystemRoot%\system32\mpssvc.dll|2|0|NT Authority\LocalService|32
*|MSDTC|Distributed Transaction Coordinator|%SystemRoot%\System32\msdtc.exe||2|1|NT AUTHORITY\NetworkService|16
*|MSiSCSI|Microsoft iSCSI Initiator Service|svchost:netsvcs -p|%SystemRoot%\System32\iscsiexe.dll|3|0|LocalSystem|32
*|msiserver|Windows Installer|%systemroot%\system32\msiexec.exe /V||3|0|LocalSystem|16
*|NcaSvc|Network Connectivity Assistant|svchost:NetSvcs -p|%SystemRoot%\System32\ncasvc.dll|3|0|LocalSystem|32
*|NcbService|Network Connection Broker|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\ncbservice.dll|3|0|LocalSystem|32
ms|Netlogon|Netlogon|%systemroot%\system32\lsass.exe||3|0|LocalSystem|32
dc+|Netlogon|Netlogon|%systemroot%\system32\lsass.exe||2|0|LocalSystem|32
*|Netman|Network Connections|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\netman.dll|3|0|LocalSystem|32
*|netprofm|Network List Service|svchost:LocalService -p|%SystemRoot%\System32\netprofmsvc.dll|3|0|NT AUTHORITY\LocalService|32
*|NetSetupSvc|Network Setup Service|svchost:netsvcs -p|%SystemRoot%\System32\NetSetupSvc.dll|3|0|LocalSystem|32
*|NetTcpPortSharing|Net.Tcp Port Sharing Service|%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\SMSvcHost.exe||4|0|NT AUTHORITY\LocalService|32
*|NgcCtnrSvc|Microsoft Passport Container|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\NgcCtnrSvc.dll|3|0|NT AUTHORITY\LocalService|32
*|NgcSvc|Microsoft Passport|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\ngcsvc.dll|3|0|LocalSystem|32
*|NlaSvc|Network Location Awareness|svchost:NetworkService -p|%SystemRoot%\System32\nlasvc.dll|2|0|NT AUTHORITY\NetworkService|32
*|nsi|Network Store Interface Service|svchost:LocalService -p|%SystemRoot%\system32\nsisvc.dll|2|0|NT Authority\LocalService|32
*|PcaSvc|Program Compatibility Assistant Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\pcasvc.dll|3|0|LocalSystem|32
*|PerfHost|Performance Counter DLL Host|%SystemRoot%\SysWow64\perfhost.exe||3|0|NT AUTHORITY\LocalService|16
*|PhoneSvc|Phone Service|svchost:LocalService -p|%SystemRoot%\System32\PhoneService.dll|3|0|NT Authority\LocalService|32
*|pla|Performance Logs & Alerts|svchost:LocalServiceNoNetwork -p|%SystemRoot%\system32\pla.dll|3|0|NT AUTHORITY\LocalService|32
*+|PlugPlay|Plug and Play|svchost:DcomLaunch -p|%SystemRoot%\system32\umpnpmgr.dll|3|0|LocalSystem|32
*|PolicyAgent|IPsec Policy Agent|svchost:NetworkServiceNetworkRestricted -p|%SystemRoot%\System32\ipsecsvc.dll|3|0|NT Authority\NetworkService|32
*|Power|Power|svchost:DcomLaunch -p|%SystemRoot%\system32\umpo.dll|2|0|LocalSystem|32
*|PrintNotify|Printer Extensions and Notifications|svchost:print|%SystemRoot%\system32\spool\drivers\x64\3\PrintConfig.dll|3|0|LocalSystem|32
*|ProfSvc|User Profile Service|svchost:netsvcs -p|%SystemRoot%\system32\profsvc.dll|2|0|LocalSystem|32
*|PushToInstall|Windows PushToInstall Service|svchost:netsvcs -p|%SystemRoot%\system32\PushToInstall.dll|3|0|LocalSystem|32
*|QWAVE|Quality Windows Audio Video Experience|svchost:LocalServiceAndNoImpersonation -p|%windir%\system32\qwave.dll|3|0|NT AUTHORITY\LocalService|32
*|RasAuto|Remote Access Auto Connection Manager|svchost:netsvcs -p|%SystemRoot%\System32\rasauto.dll|3|0|localSystem|32
*|RasMan|Remote Access Connection Manager|svchost:netsvcs|%SystemRoot%\System32\rasmans.dll|3|0|localSystem|32
*|RemoteAccess|Routing and Remote Access|svchost:netsvcs|%SystemRoot%\System32\mprdim.dll|4|0|localSystem|32
*|RemoteRegistry|Remote Registry|svchost:localService -p|%SystemRoot%\system32\regsvc.dll|2|1|NT AUTHORITY\LocalService|32
*|RmSvc|Radio Management Service|svchost:LocalServiceNetworkRestricted|%SystemRoot%\System32\RMapi.dll|3|0|NT AUTHORITY\LocalService|32
*+|RpcEptMapper|RPC Endpoint Mapper|svchost:RPCSS -p|%SystemRoot%\System32\RpcEpMap.dll|2|0|NT AUTHORITY\NetworkService|32
*+|RpcLocator|Remote Procedure Call (RPC) Locator|%SystemRoot%\system32\locator.exe||3|0|NT AUTHORITY\NetworkService|16
*+|RpcSs|Remote Procedure Call (RPC)|svchost:rpcss -p|%SystemRoot%\system32\rpcss.dll|2|0|NT AUTHORITY\NetworkService|32
*|RSoPProv|Resultant Set of Policy Provider|%SystemRoot%\system32\RSoPProv.exe||3|0|LocalSystem|16
*|sacsvr|Special Administration Console Helper|svchost:netsvcs -p|%SystemRoot%\System32\sacsvr.dll|3|0|LocalSystem|32
*+|SamSs|Security Accounts Manager|%SystemRoot%\system32\lsass.exe||2|0|LocalSystem|32
*|SCardSvr|Smart Card|svchost:LocalServiceAndNoImpersonation|%SystemRoot%\System32\SCardSvr.dll|3|0|NT AUTHORITY\LocalService|32
*|ScDeviceEnum|Smart Card Device Enumeration Service|svchost:LocalSystemNetworkRestricted|%SystemRoot%\System32\ScDeviceEnum.dll|3|0|LocalSystem|32
*+|Schedule|Task Scheduler|svchost:netsvcs -p|%systemroot%\system32\schedsvc.dll|2|0|LocalSystem|32
*|SCPolicySvc|Smart Card Removal Policy|svchost:netsvcs|%SystemRoot%\System32\certprop.dll|3|0|LocalSystem|32
*|seclogon|Secondary Logon|svchost:netsvcs -p|%windir%\system32\seclogon.dll|3|0|LocalSystem|32
*|Sense|Windows Defender Advanced Threat Protection Service|"%ProgramFiles%\Windows Defender Advanced Threat Protection\MsSense.exe"||3|0|LocalSystem|16
*|SENS|System Event Notification Service|svchost:netsvcs -p|%SystemRoot%\System32\sens.dll|2|0|LocalSystem|32
*|SensorService|Sensor Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\system32\SensorService.dll|3|0|LocalSystem|32
*|SessionEnv|Remote Desktop Configuration|svchost:netsvcs -p|%SystemRoot%\System32\sessenv.dll|3|0|localSystem|32
*|SgrmBroker|System Guard Runtime Monitor Broker|%SystemRoot%\system32\SgrmBroker.exe||2|1|LocalSystem|16
*|SharedAccess|Internet Connection Sharing (ICS)|svchost:netsvcs -p|%SystemRoot%\System32\ipnathlp.dll|4|0|LocalSystem|32
*|ShellHWDetection|Shell Hardware Detection|svchost:netsvcs -p|%SystemRoot%\System32\shsvcs.dll|2|0|LocalSystem|32
*|shpamsvc|Shared PC Account Manager|svchost:netsvcs -p|%SystemRoot%\System32\Windows.SharedPC.AccountManager.dll|4|0|LocalSystem|32
*|smphost|Microsoft Storage Spaces SMP|svchost:smphost|%SystemRoot%\System32\smphost.dll|3|0|NT AUTHORITY\NetworkService|16
*+|SNMPTRAP|SNMP Trap|%SystemRoot%\System32\snmptrap.exe||3|0|NT AUTHORITY\LocalService|16
*+|Spooler|Print Spooler|%SystemRoot%\System32\spoolsv.exe||2|0|LocalSystem|272
*|sppsvc|Software Protection|%SystemRoot%\system32\sppsvc.exe||2|1|NT AUTHORITY\NetworkService|16
*|ssh-agent|OpenSSH Authentication Agent|%SystemRoot%\System32\OpenSSH\ssh-agent.exe||4|0|LocalSystem|16
*|SSDPSRV|SSDP Discovery|svchost:LocalServiceAndNoImpersonation -p|%SystemRoot%\System32\ssdpsrv.dll|4|0|NT AUTHORITY\LocalService|32
*|SstpSvc|Secure Socket Tunneling Protocol Service|svchost:LocalService -p|%SystemRoot%\system32\sstpsvc.dll|3|0|NT Authority\LocalService|32
*|StateRepository|State Repository Service|svchost:appmodel -p|%windir%\system32\windows.staterepository.dll|3|0|LocalSystem|32
*|stisvc|Windows Image Acquisition (WIA)|svchost:imgsvc|%SystemRoot%\System32\wiaservc.dll|3|0|NT Authority\LocalService|32
*|StorSvc|Storage Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\system32\storsvc.dll|3|0|LocalSystem|32
*|svsvc|Spot Verifier|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\system32\svsvc.dll|3|0|LocalSystem|32
*|swprv|Microsoft Software Shadow Copy Provider|svchost:swprv|%SystemRoot%\System32\swprv.dll|3|0|LocalSystem|16
*|SysMain|SysMain|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\system32\sysmain.dll|2|0|LocalSystem|32
*|SystemEventsBroker|System Events Broker|svchost:DcomLaunch -p|%SystemRoot%\System32\SystemEventsBrokerServer.dll|2|0|LocalSystem|32
*|TabletInputService|Touch Keyboard and Handwriting Panel Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\TabSvc.dll|3|0|LocalSystem|32
*|tapisrv|Telephony|svchost:NetworkService -p|%SystemRoot%\System32\tapisrv.dll|3|0|NT AUTHORITY\NetworkService|32
*|TermService|Remote Desktop Services|svchost:NetworkService|%SystemRoot%\System32\termsrv.dll|3|0|NT Authority\NetworkService|32
*|Themes|Themes|svchost:netsvcs -p|%SystemRoot%\System32\themeservice.dll|2|0|LocalSystem|32
*|TieringEngineService|Storage Tiers Management|%SystemRoot%\system32\TieringEngineService.exe||3|0|localSystem|16
*|TimeBrokerSvc|Time Broker|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\TimeBrokerServer.dll|3|0|NT AUTHORITY\LocalService|32
*|TokenBroker|Web Account Manager|svchost:netsvcs -p|%SystemRoot%\System32\TokenBroker.dll|3|0|LocalSystem|32
*|TrkWks|Distributed Link Tracking Client|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\trkwks.dll|2|0|LocalSystem|32
*+|TrustedInstaller|Windows Modules Installer|%SystemRoot%\servicing\TrustedInstaller.exe||3|0|localSystem|16
*|tzautoupdate|Auto Time Zone Updater|svchost:LocalService -p|%SystemRoot%\system32\tzautoupdate.dll|4|0|NT AUTHORITY\LocalService|32
*|UALSVC|User Access Logging Service|svchost:netsvcs -p|%SystemRoot%\System32\ualsvc.dll|2|1|LocalSystem|32
*|UevAgentService|User Experience Virtualization Service|%SystemRoot%\system32\AgentService.exe||4|0|LocalSystem|16
*|UmRdpService|Remote Desktop Services UserMode Port Redirector|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\umrdp.dll|3|0|localSystem|32
*|UserManager|User Manager|svchost:netsvcs -p|%SystemRoot%\System32\usermgr.dll|2|0|LocalSystem|32
*|UsoSvc|Update Orchestrator Service|svchost:netsvcs -p|%systemroot%\system32\usosvc.dll|2|1|LocalSystem|32
*|VaultSvc|Credential Manager|%SystemRoot%\system32\lsass.exe||3|0|LocalSystem|32
*|vds|Virtual Disk|%SystemRoot%\System32\vds.exe||3|0|LocalSystem|16
*|VGAuthService|VMware Alias Manager and Ticket Service|"C:\Program Files\VMware\VMware Tools\VMware VGAuth\VGAuthService.exe"||2|0|LocalSystem|16
*|vm3dservice|VMware SVGA Helper Service|C:\Windows\system32\vm3dservice.exe||2|0|LocalSystem|16
*|vmicguestinterface|Hyper-V Guest Service Interface|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\icsvc.dll|3|0|LocalSystem|32
*|vmicheartbeat|Hyper-V Heartbeat Service|svchost:ICService -p|%SystemRoot%\System32\icsvc.dll|3|0|LocalSystem|32
*|vmickvpexchange|Hyper-V Data Exchange Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\icsvc.dll|3|0|LocalSystem|32
*|vmicrdv|Hyper-V Remote Desktop Virtualization Service|svchost:ICService -p|%SystemRoot%\System32\icsvc.dll|3|0|LocalSystem|32
*|vmicshutdown|Hyper-V Guest Shutdown Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\icsvc.dll|3|0|LocalSystem|32
*|vmictimesync|Hyper-V Time Synchronization Service|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\icsvc.dll|3|0|NT AUTHORITY\LocalService|32
*|vmicvmsession|Hyper-V PowerShell Direct Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\icsvc.dll|3|0|LocalSystem|32
*|vmicvss|Hyper-V Volume Shadow Copy Requestor|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\icsvc.dll|3|0|LocalSystem|32
*+|VMTools|VMware Tools|"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe"||2|0|LocalSystem|16
*|VSS|Volume Shadow Copy|%systemroot%\system32\vssvc.exe||3|0|LocalSystem|16
ms|W32Time|Windows Time|svchost:LocalService|%systemroot%\system32\w32time.dll|3|0|NT AUTHORITY\LocalService|32
dc+|W32Time|Windows Time|svchost:LocalService|%systemroot%\system32\w32time.dll|2|0|NT AUTHORITY\LocalService|32
*|WaaSMedicSvc|Windows Update Medic Service|svchost:wusvcs -p|%SystemRoot%\System32\WaaSMedicSvc.dll|3|0|LocalSystem|32
*|WarpJITSvc|Warp JIT Service|svchost:LocalServiceNetworkRestricted|%SystemRoot%\System32\Windows.WARP.JITService.dll|3|0|NT Authority\LocalService|32
*|wbengine|Block Level Backup Engine Service|"%systemroot%\system32\wbengine.exe"||3|0|localSystem|16
*|WbioSrvc|Windows Biometric Service|svchost:WbioSvcGroup|%SystemRoot%\System32\wbiosrvc.dll|3|0|LocalSystem|32
*|Wcmsvc|Windows Connection Manager|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\System32\wcmsvc.dll|2|0|NT Authority\LocalService|32
*|WdiServiceHost|Diagnostic Service Host|svchost:LocalService -p|%SystemRoot%\system32\wdi.dll|3|0|NT AUTHORITY\LocalService|32
*|WdiSystemHost|Diagnostic System Host|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\system32\wdi.dll|3|0|LocalSystem|32
*|WdNisSvc|Microsoft Defender Antivirus Network Inspection Service|"C:\ProgramData\Microsoft\Windows Defender\platform\4.18.24090.11-0\NisSrv.exe"||3|0|NT AUTHORITY\LocalService|16
*|Wecsvc|Windows Event Collector|svchost:NetworkService -p|%SystemRoot%\system32\wecsvc.dll|3|0|NT AUTHORITY\NetworkService|32
*|WEPHOSTSVC|Windows Encryption Provider Host Service|svchost:WepHostSvcGroup|%SystemRoot%\system32\wephostsvc.dll|3|0|NT AUTHORITY\LocalService|32
*|wercplsupport|Problem Reports Control Panel Support|svchost:netsvcs -p|%SystemRoot%\System32\wercplsupport.dll|3|0|localSystem|32
*|WerSvc|Windows Error Reporting Service|svchost:WerSvcGroup|%SystemRoot%\System32\WerSvc.dll|3|0|localSystem|32
*|WiaRpc|Still Image Acquisition Events|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\System32\wiarpc.dll|3|0|LocalSystem|32
*+|WinDefend|Microsoft Defender Antivirus Service|"C:\ProgramData\Microsoft\Windows Defender\platform\4.18.24090.11-0\MsMpEng.exe"||2|0|LocalSystem|16
*|WinHttpAutoProxySvc|WinHTTP Web Proxy Auto-Discovery Service|svchost:LocalServiceNetworkRestricted -p|%SystemRoot%\system32\winhttp.dll|3|0|NT AUTHORITY\LocalService|32
*+|Winmgmt|Windows Management Instrumentation|svchost:netsvcs -p|%SystemRoot%\system32\wbem\WMIsvc.dll|2|0|localSystem|32
*+|WinRM|Windows Remote Management (WS-Management)|svchost:NetworkService -p|%SystemRoot%\system32\WsmSvc.dll|2|1|NT AUTHORITY\NetworkService|32
*|wisvc|Windows Insider Service|svchost:netsvcs -p|%SystemRoot%\system32\flightsettings.dll|3|0|LocalSystem|32
*|wlidsvc|Microsoft Account Sign-in Assistant|svchost:netsvcs -p|%SystemRoot%\system32\wlidsvc.dll|3|0|LocalSystem|32
*|wmiApSrv|WMI Performance Adapter|%systemroot%\system32\wbem\WmiApSrv.exe||3|0|localSystem|16
*|WPDBusEnum|Portable Device Enumerator Service|svchost:LocalSystemNetworkRestricted -p|%SystemRoot%\system32\wpdbusenum.dll|3|0|LocalSystem|32
*|WpnService|Windows Push Notifications System Service|svchost:netsvcs -p|%SystemRoot%\system32\WpnService.dll|2|0|LocalSystem|32
*|wuauserv|Windows Update|svchost:netsvcs -p|%systemroot%\system32\wuaueng.dll|3|0|LocalSystem|32
dc+|ADWS|Active Directory Web Services|%SystemRoot%\ADWS\Microsoft.ActiveDirectory.WebServices.exe||2|0|LocalSystem|16
dc|Dfs|DFS Namespace|%SystemRoot%\system32\dfssvc.exe||2|0|LocalSystem|16
dc+|DFSR|DFS Replication|%SystemRoot%\system32\DFSRs.exe||2|0|LocalSystem|16
dc+|DNS|DNS Server|%SystemRoot%\System32\dns.exe||2|0|LocalSystem|16
dc|IsmServ|Intersite Messaging|%SystemRoot%\System32\ismserv.exe||2|0|LocalSystem|16
dc+|Kdc|Kerberos Key Distribution Center|%SystemRoot%\System32\lsass.exe||2|0|LocalSystem|32
dc+|NTDS|Active Directory Domain Services|%SystemRoot%\System32\lsass.exe||2|0|LocalSystem|32
*+|ACPI|Microsoft ACPI Driver|bootdrv:ACPI.sys||0|0||1
*|acpiex|Microsoft ACPIEx Driver|bootdrv:acpiex.sys||0|0||1
*+|AFD|Ancillary Function Driver for Winsock|drv:afd.sys||1|0||1
*|afunix|afunix|drv:afunix.sys||1|0||1
*|ahcache|Application Compatibility Cache|bootdrv:ahcache.sys||1|0||1
*|AppID|AppID Driver|drv:appid.sys||3|0||1
*|bam|Background Activity Moderator Driver|drv:bam.sys||1|0||1
*|BasicDisplay|BasicDisplay|drv:BasicDisplay.sys||1|0||1
*|Beep|Beep|drv:Beep.sys||1|0||1
*|bindflt|Windows Bind Filter Driver|drv:bindflt.sys||2|0||2
*|bowser|Browser|drv:bowser.sys||3|0||2
*|cdrom|CD-ROM Driver|drv:cdrom.sys||1|0||1
*|CLFS|Common Log (CLFS)|bootdrv:CLFS.sys||0|0||1
*|CldFlt|Windows Cloud Files Filter Driver|drv:cldflt.sys||2|0||2
*+|CNG|CNG|bootdrv:cng.sys||0|0||1
*|condrv|Console Driver|drv:condrv.sys||3|0||1
*|Dfsc|DFS Namespace Client Driver|drv:dfsc.sys||1|0||2
*+|disk|Disk Driver|bootdrv:disk.sys||0|0||1
*|DXGKrnl|LDDM Graphics Subsystem|drv:dxgkrnl.sys||3|0||1
*|FileCrypt|FileCrypt|drv:filecrypt.sys||1|0||2
*|FileInfo|File Information FS MiniFilter|bootdrv:fileinfo.sys||0|0||2
*+|FltMgr|FltMgr|bootdrv:fltmgr.sys||0|0||2
*|FsDepends|File System Dependency Minifilter|bootdrv:FsDepends.sys||0|0||2
*|fvevol|BitLocker Drive Encryption Filter Driver|bootdrv:fvevol.sys||0|0||1
*+|HTTP|HTTP Service|drv:HTTP.sys||3|0||1
*|i8042prt|i8042 Keyboard and PS/2 Mouse Port Driver|drv:i8042prt.sys||3|0||1
*|kbdclass|Keyboard Class Driver|drv:kbdclass.sys||3|0||1
*+|KSecDD|KSecDD|bootdrv:ksecdd.sys||0|0||1
*|KSecPkg|KSecPkg|bootdrv:ksecpkg.sys||0|0||1
*|luafv|UAC File Virtualization|drv:luafv.sys||2|0||2
*|mouclass|Mouse Class Driver|drv:mouclass.sys||3|0||1
*|mountmgr|Mount Point Manager|bootdrv:mountmgr.sys||0|0||1
*|mpsdrv|Windows Defender Firewall Authorization Driver|drv:mpsdrv.sys||3|0||1
*|mrxsmb|SMB MiniRedirector Wrapper and Engine|drv:mrxsmb.sys||3|0||2
*|mrxsmb20|SMB 2.0 MiniRedirector|drv:mrxsmb20.sys||3|0||2
*|Msfs|Msfs|drv:Msfs.sys||1|0||2
*|MsQuic|MsQuic|drv:msquic.sys||3|0||1
*|Mup|Mup|bootdrv:mup.sys||0|0||2
*+|NDIS|NDIS System Driver|bootdrv:ndis.sys||0|0||1
*|NetBIOS|NetBIOS Interface|drv:netbios.sys||1|0||2
*|NetBT|NetBT|drv:netbt.sys||1|0||1
*|Npfs|Npfs|drv:Npfs.sys||1|0||2
*|nsiproxy|NSI Proxy Service Driver|drv:nsiproxy.sys||1|0||1
*+|Ntfs|Ntfs|drv:Ntfs.sys||3|0||2
*|Null|Null|drv:Null.sys||1|0||1
*|partmgr|Partition driver|bootdrv:partmgr.sys||0|0||1
*+|pci|PCI Bus Driver|bootdrv:pci.sys||0|0||1
*|pcw|Performance Counters for Windows Driver|bootdrv:pcw.sys||0|0||1
*|PEAUTH|PEAUTH|drv:peauth.sys||2|0||1
*|Psched|QoS Packet Scheduler|drv:pacer.sys||1|0||1
*|rdbss|Redirected Buffering Sub System|drv:rdbss.sys||1|0||2
*|RDPDR|Remote Desktop Device Redirector Driver|drv:rdpdr.sys||3|0||1
*|ReFS|ReFS|drv:ReFS.sys||3|0||2
*|spaceport|Storage Spaces Driver|bootdrv:spaceport.sys||0|0||1
*+|srv2|SMB 2.0 Server Driver|drv:srv2.sys||3|0||2
*+|srvnet|srvnet|drv:srvnet.sys||3|0||2
*|storahci|Microsoft Standard SATA AHCI Driver|bootdrv:storahci.sys||0|0||1
*|storvsc|storvsc|bootdrv:storvsc.sys||0|0||1
*+|Tcpip|TCP/IP Protocol Driver|bootdrv:tcpip.sys||0|0||1
*|tdx|NetIO Legacy TDI Support Driver|drv:tdx.sys||1|0||1
*|TPM|TPM|drv:tpm.sys||3|0||1
*|vmbus|Virtual Machine Bus|bootdrv:vmbus.sys||0|0||1
*|volmgr|Volume Manager Driver|bootdrv:volmgr.sys||0|0||1
*|volsnap|Volume Shadow Copy driver|bootdrv:volsnap.sys||0|0||1
*+|Wdf01000|Kernel Mode Driver Frameworks service|bootdrv:Wdf01000.sys||0|0||1
*+|WdBoot|Microsoft Defender Antivirus Boot Driver|drv:wd\WdBoot.sys||0|0||1
*+|WdFilter|Microsoft Defender Antivirus Mini-Filter Driver|drv:wd\WdFilter.sys||0|0||2
*|WdNisDrv|Microsoft Defender Antivirus Network Inspection System Driver|drv:wd\WdNisDrv.sys||3|0||1
*|WFPLWFS|Microsoft Windows Filtering Platform|bootdrv:wfplwfs.sys||0|0||1
*|Wof|Windows Overlay File System Filter Driver|bootdrv:Wof.sys||0|0||2
`

// Role says which catalog entries a host carries.
type Role int

const (
	RoleMember Role = iota // member server
	RoleDC                 // domain controller
)

type catalogKey struct {
	role  Role
	small bool
}

var (
	catalogOnce    sync.Once
	catalogEntries map[catalogKey][]inventory.Service
	catalogErr     error
)

// baseInventory returns the shared, read-only inventory for a role. Callers
// must copy before modifying.
func baseInventory(role Role, small bool) []inventory.Service {
	catalogOnce.Do(func() {
		catalogEntries, catalogErr = parseCatalog(catalog)
	})
	if catalogErr != nil {
		panic(catalogErr) // the table is a compile-time constant: a test catches this
	}
	return catalogEntries[catalogKey{role, small}]
}

func parseCatalog(text string) (map[catalogKey][]inventory.Service, error) {
	out := map[catalogKey][]inventory.Service{}
	for n, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 9 {
			return nil, fmt.Errorf("winhost catalog line %d: %d fields, want 9", n, len(f))
		}
		start, err1 := strconv.Atoi(f[5])
		typ, err2 := strconv.ParseUint(f[8], 10, 32)
		if err1 != nil || err2 != nil || (f[6] != "0" && f[6] != "1") {
			return nil, fmt.Errorf("winhost catalog line %d: bad start, delayed or type", n)
		}
		svc := inventory.Service{
			Name: f[1], DisplayName: f[2], ImagePath: expandPath(f[3]), ServiceDLL: f[4],
			StartMode: inventory.StartMode(start), DelayedAuto: f[6] == "1", Account: f[7], Type: uint32(typ),
		}
		svc.State = "Stopped"
		if start <= 2 {
			svc.State = "Running"
		}
		roles, small := strings.CutSuffix(f[0], "+")
		for _, r := range []Role{RoleMember, RoleDC} {
			if roles == "*" || (roles == "dc" && r == RoleDC) || (roles == "ms" && r == RoleMember) {
				out[catalogKey{r, false}] = append(out[catalogKey{r, false}], svc)
				if small {
					out[catalogKey{r, true}] = append(out[catalogKey{r, true}], svc)
				}
			}
		}
	}
	return out, nil
}

func expandPath(p string) string {
	switch {
	case strings.HasPrefix(p, "svchost:"):
		return `%SystemRoot%\system32\svchost.exe -k ` + strings.TrimPrefix(p, "svchost:")
	case strings.HasPrefix(p, "drv:"):
		return `\SystemRoot\System32\drivers\` + strings.TrimPrefix(p, "drv:")
	case strings.HasPrefix(p, "bootdrv:"):
		return `System32\drivers\` + strings.TrimPrefix(p, "bootdrv:")
	}
	return p
}
