using System.Net.Sockets;
using Lb.Rules;
using Lb.Vrrp;

namespace Lb.Host.HighAvailability;

/// <summary>
/// Runs this node's VRRP router (keepalived's job) inside `lb run`: the virtual IP moves here when this node
/// becomes MASTER. `track_self` checks lb's own listeners by connecting to them, the replacement for the
/// seed's `killall -0 apache2`. On shutdown a master sends priority 0 so the backup takes over at once.
/// </summary>
public sealed class VrrpService(LbConfig config, ILogger<VrrpService> logger) : IAsyncDisposable
{
    private VrrpRouter? _router;

    /// <summary>MASTER, BACKUP, FAULT... or "n/a" when the config has no [vrrp].</summary>
    public string State => _router?.Role.ToString().ToUpperInvariant() ?? "n/a";

    /// <summary>Packets the router dropped, by reason; empty when the config has no [vrrp].</summary>
    public IReadOnlyDictionary<string, long> Drops() =>
        _router is null ? new Dictionary<string, long>() : DropsByReason(_router.Drops);

    /// <summary>Drop counters as stats show them: the reason's name and its count.</summary>
    public static IReadOnlyDictionary<string, long> DropsByReason(DropCounters drops) =>
        drops.Snapshot().ToDictionary(kv => kv.Key.ToString(), kv => kv.Value);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (config.Vrrp is not { } vrrp)
            return;
        var options = VrrpMapping.ToOptions(vrrp.Value, ListenersHealthy);
        _router = new VrrpRouter(options, logger);
        _router.RoleChanged += (from, to, reason) =>
            logger.LogWarning("vrrp {Node}: {From} -> {To} ({Reason})", config.Node.Name, from, to, reason);
        await _router.StartAsync(cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_router is not null)
            await _router.StopAsync(cancellationToken);
    }

    /// <summary>
    /// Called when shutdown begins, while the listeners still serve: a master hands the VIP over (priority 0)
    /// before lb stops accepting, so no client request is lost (RFC 5798 §6.4.3, shutdown event).
    /// </summary>
    public async Task HandOverAsync(TimeSpan bound)
    {
        if (_router is null)
            return;
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            await _router.StopAsync(timeout.Token).WaitAsync(bound);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            logger.LogWarning("vrrp hand-over did not finish within {Bound}", bound);
        }
    }

    /// <summary>Every configured listener accepts a TCP connection within a second.</summary>
    private async Task<bool> ListenersHealthy(CancellationToken cancellationToken)
    {
        foreach (var listener in new[] { config.Listen.Http, config.Listen.Https })
            if (listener is not null && !await CanConnect(listener.Value, cancellationToken))
                return false;
        return true;
    }

    private static async Task<bool> CanConnect(Lb.Rules.Endpoint endpoint, CancellationToken cancellationToken)
    {
        var host = endpoint.Host is "*" or "0.0.0.0" ? "127.0.0.1" : endpoint.Host == "::" ? "::1" : endpoint.Host;
        using var client = new TcpClient();
        using var withinASecond = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        withinASecond.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            await client.ConnectAsync(host, endpoint.Port, withinASecond.Token);
            return client.Connected;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_router is not null)
            await _router.DisposeAsync();
    }
}
