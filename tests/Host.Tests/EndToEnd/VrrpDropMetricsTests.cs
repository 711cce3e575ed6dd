using System.Net;
using Lb.Host.HighAvailability;
using Lb.Vrrp;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Packets the VRRP receive checks drop (Vrrp.Tests HostileVrrpTests) show in `/metrics` as
/// `lb_vrrp_dropped_total{reason}`: real counters, filled by the router's own receive step with a real keepalived
/// advertisement and broken copies of it, read through the same adapter `lb run` wires to the stats.
/// </summary>
public sealed class VrrpDropMetricsTests : IAsyncLifetime
{
    /// <summary>keepalived 2.2.7's VRRPv2 advertisement, no auth, VRID 51, VIP 10.99.0.100 (Vrrp.Tests KeepalivedVectors.V2NoAuthIp).</summary>
    private const string KeepalivedV2 = "45c0002800020000ff70d0230a63000be00000122133960100013e030a6300640000000000000000";

    private StatsSite _site = null!;

    public async Task InitializeAsync() => _site = await StatsSite.StartAsync();

    public async Task DisposeAsync() => await _site.DisposeAsync();

    [Fact]
    public async Task Vrrp_packets_the_receive_checks_drop_are_counted_by_reason_in_metrics()
    {
        var advert = Convert.FromHexString(KeepalivedV2);
        var expected = new ExpectedInstance(VrrpVersion.V2, 51, [IPAddress.Parse("10.99.0.100")], 1, AuthType.None,
            new byte[VrrpPacket.V2AuthDataLength], IPAddress.Parse("10.99.0.13"));
        var drops = new DropCounters();
        var crossedARouter = (byte[])advert.Clone();
        crossedARouter[8] = 254;
        Assert.NotNull(ReceivePath.Accept(IpPacket.TryParse(advert), expected, drops).Advert);
        ReceivePath.Accept(IpPacket.TryParse(crossedARouter), expected, drops);
        ReceivePath.Accept(IpPacket.TryParse(crossedARouter), expected, drops);
        ReceivePath.Accept(IpPacket.TryParse(advert[..30]), expected, drops);
        _site.Server.Node.VrrpDrops = () => VrrpService.DropsByReason(drops);

        var response = await _site.Stats.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var metrics = StatsPrometheusText.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal("counter", metrics["lb_vrrp_dropped_total"].Type);
        Assert.Equal(2, metrics.Value("lb_vrrp_dropped_total", ("reason", "BadTtl")));
        Assert.Equal(1, metrics.Value("lb_vrrp_dropped_total", ("reason", "Truncated")));
        Assert.Equal(3, metrics.Sum("lb_vrrp_dropped_total"));
    }
}
