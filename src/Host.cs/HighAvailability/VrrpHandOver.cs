using Lb.Host.Forwarding;

namespace Lb.Host.HighAvailability;

/// <summary>
/// The master's part of shutdown, run before Kestrel closes its listeners (<see cref="IHostedLifecycleService.StoppingAsync"/>
/// runs before any hosted service stops). After the VIP moves, packets of connections still open here go to the new
/// master, which resets them: a response in flight would be lost. So the master keeps serving (new requests
/// included) until a moment with none in flight, bounded, and only then hands over with priority 0.
/// </summary>
/// <remarks>
/// It awaits rather than blocks: it used to run in an ApplicationStopping callback that polled with Thread.Sleep and
/// waited on the hand-over with Task.Wait, holding a thread-pool thread for ~1 s while lb still served.
/// </remarks>
public sealed class VrrpHandOver(VrrpService vrrp, ForwardingState forwarding) : IHostedLifecycleService
{
    private static readonly TimeSpan IdleBound = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan HandOverBound = TimeSpan.FromSeconds(3);

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (vrrp.State == "MASTER")
            await WaitUntilIdleAsync(cancellationToken);
        await vrrp.HandOverAsync(HandOverBound);
    }

    /// <summary>Until no request is in flight, at most <see cref="IdleBound"/> or until shutdown's own deadline.</summary>
    private async Task WaitUntilIdleAsync(CancellationToken shutdownDeadline)
    {
        var deadline = DateTime.UtcNow + IdleBound;
        try
        {
            while (forwarding.GlobalSlots.CurrentCount < forwarding.Config.Defaults.MaxConn && DateTime.UtcNow < deadline)
                await Task.Delay(5, shutdownDeadline);
        }
        catch (OperationCanceledException)
        {
            // Shutdown's deadline passed: hand over now rather than not at all.
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
