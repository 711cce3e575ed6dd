using Lb.Host.HighAvailability;
using Lb.Rules;
using Lb.Vrrp;

namespace Lb.Host.Serving;

/// <summary>The `lb` subcommands other than the demo.</summary>
public static class Commands
{
    public static int Check(string path, string[] peers)
    {
        var load = ConfigFile.Load(path);
        if (!load.IsValid)
        {
            ConfigFile.PrintErrors(path, load, Console.Out);
            return 1;
        }
        Console.WriteLine(Rules.Rules.Summary(load.Config));
        return load.Config.Vrrp is { } vrrp ? CheckVrrp(path, load.Config.Node.Name, vrrp.Value, peers) : 0;
    }

    /// <summary>
    /// The `[vrrp]` part of `lb check`: the library's own validation, then the failover truth table of this node
    /// and its peers (keepalived users find out only in production that a failure can never move the VIP).
    /// </summary>
    private static int CheckVrrp(string path, string nodeName, VrrpConfig vrrp, string[] peerFiles)
    {
        var nodes = new List<NodePlan> { VrrpMapping.ToPlan(nodeName, vrrp) };
        var problems = VrrpMapping.ToOptions(vrrp, _ => Task.FromResult(true)).Validate().Select(p => $"{path}: vrrp.{p}").ToList();
        foreach (var peerFile in peerFiles)
        {
            var peer = ConfigFile.Load(peerFile);
            if (!peer.IsValid)
            {
                ConfigFile.PrintErrors(peerFile, peer, Console.Out);
                return 1;
            }
            if (peer.Config.Vrrp is not { } peerVrrp)
                problems.Add($"{peerFile}: no [vrrp] section: it cannot be a peer");
            else if (peerVrrp.Value.VirtualRouterId != vrrp.VirtualRouterId)
                problems.Add($"{peerFile}: vrrp.virtual_router_id {peerVrrp.Value.VirtualRouterId} differs from {vrrp.VirtualRouterId}: they are not one pair");
            else
                nodes.Add(VrrpMapping.ToPlan(peer.Config.Node.Name, peerVrrp.Value));
        }
        if (nodes.Select(n => n.Name).Distinct().Count() != nodes.Count)
            problems.Add("two nodes share one [node] name: give each its own");
        foreach (var problem in problems)
            Console.WriteLine(problem);
        if (problems.Count > 0)
            return 1;
        foreach (var line in VrrpMapping.TruthTable(nodes))
            Console.WriteLine(line);
        return 0;
    }

    public static int Explain(string path, string url, string cookie, string[] headers, string from)
    {
        var load = ConfigFile.Load(path);
        if (!load.IsValid)
        {
            ConfigFile.PrintErrors(path, load, Console.Error);
            return 1;
        }
        foreach (var line in Rules.Explain.DescribeRequest(Rules.Rules.Compile(load.Config), url, cookie, headers, from))
            Console.WriteLine(line);
        return 0;
    }

    /// <summary>`lb config show -c FILE`: the effective config as TOML, every default filled in and marked.</summary>
    public static int ConfigShow(string path)
    {
        var load = ConfigFile.Load(path);
        if (!load.IsValid)
        {
            ConfigFile.PrintErrors(path, load, Console.Error);
            return 1;
        }
        Console.Write(Rules.TomlRender.Render(load.Config));
        return 0;
    }

    public static async Task<int> RunAsync(string path)
    {
        var load = ConfigFile.Load(path);
        if (!load.IsValid)
        {
            ConfigFile.PrintErrors(path, load, Console.Error);
            return 1;
        }
        if (PrivilegeCheck.Problems(load.Config) is { Length: > 0 } missing)
        {
            foreach (var line in missing) Console.Error.WriteLine(line);
            return 1;
        }
        if (load.Config.Node.WarmUp > TimeSpan.Zero && (await PipelineWarmUp.RunAsync(load.Config, Console.Out)).StopRequested)
            return 0; // SIGTERM/SIGINT during the warm-up: stop before anything was opened
        LbServer server;
        try
        {
            server = await LbServer.StartAsync(load.Config, configPath: path);
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException
                                       or System.Net.Sockets.SocketException or ArgumentException or InvalidOperationException)
        {
            // A port in use, a certificate that became unreadable, or VRRP without its interface or raw-socket
            // rights: one clear line, no stack trace.
            Console.Error.WriteLine($"lb: cannot start: {e.Message}");
            return 1;
        }
        await using (server)
        {
            Console.WriteLine($"lb {LbVersion.Text}: {Rules.Rules.Summary(load.Config)}");
            await server.WaitForShutdownAsync();
        }
        return 0;
    }

    public static int Usage(string text, int exitCode)
    {
        (exitCode == 0 ? Console.Out : Console.Error).WriteLine(text);
        return exitCode;
    }

    public static int Version()
    {
        Console.WriteLine($"lb {LbVersion.Text}");
        return 0;
    }
}

public static class LbVersion
{
    public static string Text => typeof(LbVersion).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
