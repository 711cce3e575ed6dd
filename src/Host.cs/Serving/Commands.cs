using Lb.Rules;

namespace Lb.Host.Serving;

/// <summary>The `lb` subcommands other than the demo.</summary>
public static class Commands
{
    public static int Check(string path)
    {
        var load = ConfigFile.Load(path);
        if (!load.IsValid)
        {
            ConfigFile.PrintErrors(path, load, Console.Out);
            return 1;
        }
        Console.WriteLine(Rules.Rules.Summary(load.Config));
        return 0;
    }

    public static int Explain(string path, string url, string cookie)
    {
        var load = ConfigFile.Load(path);
        if (!load.IsValid)
        {
            ConfigFile.PrintErrors(path, load, Console.Error);
            return 1;
        }
        foreach (var line in Rules.Explain.DescribeUrl(Rules.Rules.Compile(load.Config), url, cookie))
            Console.WriteLine(line);
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
        LbServer server;
        try
        {
            server = await LbServer.StartAsync(load.Config);
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            // A port in use or a certificate that became unreadable: one clear line, no stack trace.
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
