using Lb.Host.Demo;
using Lb.Host.Serving;
using Lb.Rules;

namespace Lb.Host;

/// <summary>Composition root: parse the command line (Argu, in F#) and hand over to one command.</summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        return Cli.Parse(args) switch
        {
            Command.RunCommand run => await Commands.RunAsync(run.configFile),
            Command.CheckCommand check => Commands.Check(check.configFile, check.peers),
            Command.ExplainCommand explain => Commands.Explain(explain.configFile, explain.url, explain.cookie, explain.headers, explain.from),
            Command.ConfigShowCommand show => Commands.ConfigShow(show.configFile),
            Command.DemoCommand demo => await DemoSite.RunAsync(demo.httpsPort, demo.httpPort),
            Command.HashPasswordCommand hash => Lb.Host.Stats.HashPasswordCommand.Run(hash.iterations),
            Command.UsageCommand usage => Commands.Usage(usage.text, usage.exitCode),
            _ => Commands.Version(),
        };
    }
}
