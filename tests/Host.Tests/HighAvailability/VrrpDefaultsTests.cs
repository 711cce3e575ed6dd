using Lb.Rules;
using Lb.Vrrp;
using Xunit;

namespace Lb.Host.Tests.HighAvailability;

/// <summary>
/// The VRRP library keeps defaults of its own (it does not depend on the config rules), and `VrrpMapping` sets every
/// option from the config anyway. These tests tie the two: a library default that drifted from the config keyword's
/// (`Keywords.Vrrp`, `Keywords.TrackScript`) would make a VRRP test or tool behave unlike lb.
/// </summary>
public sealed class VrrpDefaultsTests
{
    [Fact]
    public void The_vrrp_options_defaults_are_the_config_keywords_defaults()
    {
        var options = new VrrpOptions { Interface = "eth0", VirtualRouterId = 51, VirtualIps = [] };

        Assert.Equal(Keywords.Vrrp.Priority.Default, options.Priority);
        Assert.Equal(Keywords.Vrrp.AdvertInterval.Default, options.AdvertInterval);
        Assert.Equal(Keywords.Vrrp.Version.Default, options.Version == VrrpVersion.V3 ? 3 : 2);
        Assert.Equal(Keywords.Vrrp.Preempt.Default, options.Preempt);
        Assert.Equal(Keywords.Vrrp.PreemptDelay.Default, options.PreemptDelay);
        Assert.Equal(Keywords.Vrrp.GarpMasterDelay.Default, options.GarpMasterDelay);
        Assert.Equal(Keywords.Vrrp.GarpMasterRepeat.Default, options.GarpMasterRepeat);
        Assert.Equal(Keywords.Vrrp.GarpMasterRefresh.Default, options.GarpMasterRefresh);
    }

    [Fact]
    public void The_track_script_and_track_self_defaults_are_the_config_keywords_defaults()
    {
        var script = new TrackScript("/bin/true", Keywords.TrackScript.Interval.Default);
        var self = new TrackSelf(_ => Task.FromResult(true));

        Assert.Equal(Keywords.TrackScript.Weight.Default, script.Weight);
        Assert.Equal(Keywords.TrackScript.Rise.Default, script.Rise);
        Assert.Equal(Keywords.TrackScript.Fall.Default, script.Fall);
        Assert.Equal(Keywords.Vrrp.TrackSelfWeight.Default, self.Weight);
    }
}
