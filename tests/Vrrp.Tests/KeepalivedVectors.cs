using System.Net;

namespace Lb.Vrrp.Tests;

/// <summary>
/// Real keepalived v2.2.7 packets, copied from ../shared/vrrp/keepalived-2.2.7-advertisements.txt
/// ("ip" and "frame" hex lines of each capture).
/// </summary>
public static class KeepalivedVectors
{
    /// <summary>v2-adverts.pcap: lb1 10.99.0.11 prio 150, auth PASS "lab1234".</summary>
    public const string V2AuthIp = "45c0002800020000ff70d0230a63000be0000012213396010101083d0a6300646c61623132333400";
    /// <summary>v2-prio0.pcap: lb1 on SIGTERM, priority 0.</summary>
    public const string V2Prio0Ip = "45c0002800060000ff70d01f0a63000be00000122133000101019e3d0a6300646c61623132333400";
    /// <summary>v2-lb2-after.pcap: new master lb2 10.99.0.12, prio 100.</summary>
    public const string V2Lb2Ip = "45c0002800040000ff70d0200a63000ce00000122133640101013a3d0a6300646c61623132333400";
    /// <summary>v2-noauth.pcap: prio 150, auth none.</summary>
    public const string V2NoAuthIp = "45c0002800020000ff70d0230a63000be00000122133960100013e030a6300640000000000000000";
    /// <summary>v2-seed.pcap: 101 + script weight 2 = 103, no auth.</summary>
    public const string V2SeedIp = "45c0002800040000ff70d0210a63000be00000122133670100016d030a6300640000000000000000";
    /// <summary>v2-weighted.pcap: 150 - 60 = 90 while the script fails, auth PASS.</summary>
    public const string V2WeightedIp = "45c0002800050000ff70d0200a63000be000001221335a010101443d0a6300646c61623132333400";
    /// <summary>v3-adverts.pcap: VRRPv3 IPv4, prio 150, 100 cs.</summary>
    public const string V3Ip = "45c0002000030000ff70d02a0a63000be000001231339601006442a30a630064";
    /// <summary>v3-ipv6.pcap: VRRPv3 IPv6 vrid 52 from fe80::444e:dff:fe9d:f75 to ff02::12, VIP fd99::100.</summary>
    public const string V3Ipv6Ip = "6c0aaa55001870fffe80000000000000444e0dfffe9d0f75ff020000000000000000000000000012313496010064db4dfd990000000000000000000000000100";
    /// <summary>v2-garp.pcap: lb2's gratuitous ARP for 10.99.0.100, source MAC f6:31:85:b0:ba:8c.</summary>
    public const string GarpFrame = "fffffffffffff63185b0ba8c08060001080006040001f63185b0ba8c0a630064ffffffffffff0a630064";

    public static byte[] Bytes(string hex) => Convert.FromHexString(hex);
    public static readonly IPAddress Group = IPAddress.Parse("224.0.0.18");
}
