using System.Net;
using Xunit;

namespace Lb.Vrrp.Tests;

public class ActionsTests
{
    [Fact]
    public void The_gratuitous_arp_frame_is_byte_for_byte_keepalived_s()
    {
        var mac = Convert.FromHexString("f63185b0ba8c");
        var frame = GratuitousArp.Frame(mac, IPAddress.Parse("10.99.0.100"));
        Assert.Equal(KeepalivedVectors.Bytes(KeepalivedVectors.GarpFrame), frame);
    }

    [Theory]
    [InlineData("192.0.2.100/24", "192.0.2.100", 24)]
    [InlineData("192.0.2.100", "192.0.2.100", 32)]
    [InlineData(" 192.0.2.7/0 ", "192.0.2.7", 0)]
    [InlineData("fd99::100/64", "fd99::100", 64)]
    public void Virtual_ips_parse_with_their_prefix(string text, string ip, int prefix) =>
        Assert.Equal(new VirtualIp(IPAddress.Parse(ip), prefix), VirtualIp.TryParse(text));

    [Theory]
    [InlineData("192.0.2.100/33")]
    [InlineData("192.0.2.100/-1")]
    [InlineData("192.0.2/24")]
    [InlineData("192.0.2.100/24/1")]
    [InlineData("")]
    public void Malformed_virtual_ips_are_rejected(string text) => Assert.Null(VirtualIp.TryParse(text));

    [Fact]
    public void Addresses_are_read_from_ip_o_addr_show_output()
    {
        const string output =
            "2: eth0    inet 192.0.2.11/24 scope global eth0\\       valid_lft forever preferred_lft forever\n" +
            "2: eth0    inet 192.0.2.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever\n" +
            "2: eth0    inet6 fe80::249c:77ff:fe27:bf0e/64 scope link \\       valid_lft forever preferred_lft forever\n";
        Assert.Equal(
            [IPAddress.Parse("192.0.2.11"), IPAddress.Parse("192.0.2.100"), IPAddress.Parse("fe80::249c:77ff:fe27:bf0e")],
            VipActions.ParseAddresses(output));
    }

    static VrrpOptions Valid => new()
    {
        Interface = "eth0", VirtualRouterId = 51, VirtualIps = [VirtualIp.TryParse("192.0.2.100/24")!],
    };

    [Fact]
    public void Valid_options_have_no_errors_and_v3_interval_is_in_centiseconds()
    {
        Assert.Empty(Valid.Validate());
        Assert.Equal(100, Valid.IntervalUnits);
        Assert.Equal(10, (Valid with { AdvertInterval = TimeSpan.FromMilliseconds(100) }).IntervalUnits);
        Assert.Equal(2, (Valid with { Version = VrrpVersion.V2, AdvertInterval = TimeSpan.FromSeconds(2) }).IntervalUnits);
    }

    [Fact]
    public void Validation_returns_every_error_naming_its_keyword()
    {
        var bad = Valid with
        {
            Interface = "", VirtualRouterId = 0, Priority = 0, Version = VrrpVersion.V2,
            AdvertInterval = TimeSpan.FromMilliseconds(1500), VirtualIps = [VirtualIp.TryParse("fd99::100/64")!],
            AuthPassword = "waytoolong", GarpMasterRepeat = 0,
            TrackScripts = [new TrackScript("", TimeSpan.Zero)],
        };
        var errors = bad.Validate();
        foreach (var keyword in new[] { "interface", "virtual_router_id", "priority", "advert_int", "virtual_ips", "auth_pass", "garp_master_repeat", "track_script" })
            Assert.Contains(errors, e => e.StartsWith(keyword));
        Assert.Contains((Valid with { AdvertInterval = TimeSpan.FromMilliseconds(105) }).Validate(), e => e.StartsWith("advert_int"));
        Assert.Contains((Valid with { AuthPassword = "x" }).Validate(), e => e.StartsWith("auth_pass"));
    }

    [Fact]
    public async Task A_command_that_outlives_its_timeout_is_killed_and_reported()
    {
        var started = DateTime.UtcNow;
        var r = await Command.RunAsync("/bin/sh", ["-c", "sleep 10"], TimeSpan.FromMilliseconds(200), CancellationToken.None);
        Assert.False(r.Ok);
        Assert.Contains("timed out", r.Error);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        Assert.True((await Command.RunAsync("/bin/sh", ["-c", "exit 0"], TimeSpan.FromSeconds(5), CancellationToken.None)).Ok);
        Assert.Equal(3, (await Command.RunAsync("/bin/sh", ["-c", "exit 3"], TimeSpan.FromSeconds(5), CancellationToken.None)).ExitCode);
    }

    [Fact]
    public void Loopback_is_up_and_an_unknown_interface_is_down()
    {
        Assert.True(VrrpRouter.LinkUp("lo"));
        Assert.False(VrrpRouter.LinkUp("nosuchif0"));
    }
}
