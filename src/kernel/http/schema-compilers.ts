import { AjvCompiler } from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type SchemaControllerOptions = NonNullable<FastifyServerOptions['schemaController']>;
type Factories = NonNullable<SchemaControllerOptions['compilersFactory']>;
type ValidatorFactory = NonNullable<Factories['buildValidator']>;
type SerializerFactory = NonNullable<Factories['buildSerializer']>;

/**
 * Compiling route schemas is most of what building a Fastify instance costs, and Fastify's defaults compile every
 * schema again for each instance (the admin port's app beside the public one; every app a test run builds). Here a
 * validator or serializer is compiled once per process for each distinct schema: keyed by the schema's JSON (its
 * routes build many schemas afresh each time, so the object itself would not do), the part of the request it
 * checks, and the compiler's options. Ajv and fast-json-stringify read nothing of a schema that JSON leaves out.
 */
const cache = new Map<string, unknown>();

function compiledOnce<Route extends { schema?: unknown; httpPart?: string }, Compiled>(
  factoryKey: string,
  compile: (route: Route) => Compiled,
): (route: Route) => Compiled {
  return (route) => {
    const key = `${factoryKey}\u0000${route.httpPart ?? ''}\u0000${JSON.stringify(route.schema)}`;
    let compiled = cache.get(key) as Compiled | undefined;
    if (compiled === undefined) {
      compiled = compile(route);
      cache.set(key, compiled);
    }
    return compiled;
  };
}

const validatorPool = AjvCompiler();
const buildValidator: ValidatorFactory = (externalSchemas, options) =>
  compiledOnce(`validator ${JSON.stringify([externalSchemas, options])}`, validatorPool(externalSchemas, options));

const serializerSelector = SerializerSelector();
const buildSerializer: SerializerFactory = (externalSchemas, options) =>
  compiledOnce(`serializer ${JSON.stringify([externalSchemas, options])}`, serializerSelector(externalSchemas, options));

/** Fastify's `schemaController` option. */
export const sharedSchemaCompilers: SchemaControllerOptions = { compilersFactory: { buildValidator, buildSerializer } };
