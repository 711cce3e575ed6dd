// Marks every property and event accessor of an assembly `specialname`, as C# emits them.
// Why: NativeAOT's compiler (ILC) looks for a property's custom attributes only through accessors flagged
// SpecialName, and F# leaves the flag off. Without it the F# union case properties lose their
// [CompilationMapping] under NativeAOT, FSharp.Core's union reflection sees every case as field-less and
// Argu cannot build the CLI. The flag changes nothing else: the runtime ignores it on ordinary methods.
using Mono.Cecil;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: SpecialNames <assembly.dll>   (rewrites it in place)");
    return 2;
}

var path = args[0];
var readerParameters = new ReaderParameters { ReadWrite = true, ReadSymbols = File.Exists(Path.ChangeExtension(path, ".pdb")) };
using var module = ModuleDefinition.ReadModule(path, readerParameters);
var marked = 0;
foreach (var type in module.GetTypes())
{
    foreach (var property in type.Properties)
        marked += MarkAll(property.GetMethod, property.SetMethod);
    foreach (var @event in type.Events)
        marked += MarkAll(@event.AddMethod, @event.RemoveMethod, @event.InvokeMethod);
}
if (marked > 0)
    module.Write(new WriterParameters { WriteSymbols = readerParameters.ReadSymbols });
Console.WriteLine($"SpecialNames: {marked} accessors marked in {Path.GetFileName(path)}");
return 0;

static int MarkAll(params MethodDefinition?[] accessors)
{
    var marked = 0;
    foreach (var accessor in accessors)
    {
        if (accessor is null || accessor.IsSpecialName) continue;
        accessor.IsSpecialName = true;
        marked++;
    }
    return marked;
}
