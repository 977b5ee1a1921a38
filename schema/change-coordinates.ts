/**
 * Where a schema change lands, as schema coordinates (`Type`, `Type.field`, `Type.field(arg:)`,
 * `Enum.VALUE`, `Input.field`, `@directive`), and which coordinates an operation must use to be
 * affected by it. The second list is what makes the check usage-aware.
 */
import { ChangeType, type Change, type TypeOfChangeType } from '@graphql-inspector/core';
import { isNonNullType, type GraphQLSchema } from 'graphql';

export interface ChangeTarget {
  /** The schema coordinate the change is about; reported and used to match approvals. */
  coordinate: string;
  /** An operation is affected when it uses any of these coordinates (see collectUsage). */
  usageKeys: string[];
}

const isChange = <K extends TypeOfChangeType>(change: Change, type: K): change is Change<K> => change.type === type;

export const fieldCoordinate = (type: string, field: string) => `${type}.${field}`;
export const argumentCoordinate = (type: string, field: string, arg: string) => `${type}.${field}(${arg}:)`;
/** Usage key of an operation that selects the field without passing the argument (it gets the default). */
export const omittedArgumentKey = (type: string, field: string, arg: string) => `${argumentCoordinate(type, field, arg)} omitted`;
export const directiveCoordinate = (name: string, arg?: string) => (arg === undefined ? `@${name}` : `@${name}(${arg}:)`);

/** `newSchema` answers "did this argument or input field become required?" (then omitting it breaks too). */
export function targetOf(change: Change, newSchema: GraphQLSchema): ChangeTarget {
  const at = (coordinate: string, ...extra: string[]): ChangeTarget => ({ coordinate, usageKeys: [coordinate, ...extra] });

  if (isChange(change, ChangeType.FieldRemoved)) return at(fieldCoordinate(change.meta.typeName, change.meta.removedFieldName));
  if (isChange(change, ChangeType.FieldTypeChanged)) return at(fieldCoordinate(change.meta.typeName, change.meta.fieldName));
  if (isChange(change, ChangeType.FieldAdded)) return at(fieldCoordinate(change.meta.typeName, change.meta.addedFieldName));
  if (isChange(change, ChangeType.FieldArgumentAdded)) {
    // A new required argument breaks every operation that selects the field.
    const { typeName, fieldName, addedArgumentName } = change.meta;
    return { coordinate: argumentCoordinate(typeName, fieldName, addedArgumentName), usageKeys: [fieldCoordinate(typeName, fieldName)] };
  }
  if (isChange(change, ChangeType.FieldArgumentRemoved)) {
    return at(argumentCoordinate(change.meta.typeName, change.meta.fieldName, change.meta.removedFieldArgumentName));
  }
  if (isChange(change, ChangeType.FieldArgumentTypeChanged)) {
    const { typeName, fieldName, argumentName } = change.meta;
    const required = isRequiredArgument(newSchema, typeName, fieldName, argumentName);
    return at(argumentCoordinate(typeName, fieldName, argumentName), ...(required ? [fieldCoordinate(typeName, fieldName)] : []));
  }
  if (isChange(change, ChangeType.FieldArgumentDefaultChanged)) {
    // Only operations that omit the argument see the new default.
    const { typeName, fieldName, argumentName } = change.meta;
    return { coordinate: argumentCoordinate(typeName, fieldName, argumentName), usageKeys: [omittedArgumentKey(typeName, fieldName, argumentName)] };
  }
  if (isChange(change, ChangeType.InputFieldRemoved)) return at(fieldCoordinate(change.meta.inputName, change.meta.removedFieldName));
  if (isChange(change, ChangeType.InputFieldAdded)) {
    return { coordinate: fieldCoordinate(change.meta.inputName, change.meta.addedInputFieldName), usageKeys: [change.meta.inputName] };
  }
  if (isChange(change, ChangeType.InputFieldTypeChanged)) {
    const { inputName, inputFieldName } = change.meta;
    const required = isRequiredInputField(newSchema, inputName, inputFieldName);
    return at(fieldCoordinate(inputName, inputFieldName), ...(required ? [inputName] : []));
  }
  if (isChange(change, ChangeType.InputFieldDefaultValueChanged)) {
    return { coordinate: fieldCoordinate(change.meta.inputName, change.meta.inputFieldName), usageKeys: [change.meta.inputName] };
  }
  if (isChange(change, ChangeType.EnumValueRemoved)) return at(fieldCoordinate(change.meta.enumName, change.meta.removedEnumValueName));
  if (isChange(change, ChangeType.EnumValueAdded)) {
    // Clients that read the enum may meet a value they do not know.
    return { coordinate: fieldCoordinate(change.meta.enumName, change.meta.addedEnumValueName), usageKeys: [change.meta.enumName] };
  }
  if (isChange(change, ChangeType.TypeRemoved)) return at(change.meta.removedTypeName);
  if (isChange(change, ChangeType.TypeAdded)) return at(change.meta.addedTypeName);
  if (isChange(change, ChangeType.TypeKindChanged)) return at(change.meta.typeName);
  if (isChange(change, ChangeType.UnionMemberRemoved)) return at(change.meta.unionName, change.meta.removedUnionMemberTypeName);
  if (isChange(change, ChangeType.UnionMemberAdded)) return at(change.meta.unionName);
  if (isChange(change, ChangeType.ObjectTypeInterfaceRemoved)) return at(change.meta.objectTypeName, change.meta.removedInterfaceName);
  if (isChange(change, ChangeType.ObjectTypeInterfaceAdded)) return at(change.meta.objectTypeName);
  if (isChange(change, ChangeType.SchemaQueryTypeChanged)) return at(change.meta.oldQueryTypeName ?? 'Query');
  if (isChange(change, ChangeType.SchemaMutationTypeChanged)) return at(change.meta.oldMutationTypeName ?? 'Mutation');
  if (isChange(change, ChangeType.SchemaSubscriptionTypeChanged)) return at(change.meta.oldSubscriptionTypeName ?? 'Subscription');
  if (isChange(change, ChangeType.DirectiveRemoved)) return at(directiveCoordinate(change.meta.removedDirectiveName));
  if (isChange(change, ChangeType.DirectiveArgumentRemoved)) {
    return at(directiveCoordinate(change.meta.directiveName, change.meta.removedDirectiveArgumentName));
  }
  return fromPath(change);
}

/** Descriptions, deprecations and directive usages: their inspector path is already a coordinate. */
function fromPath(change: Change): ChangeTarget {
  const path = change.path ?? '';
  const [head = '', second, third] = path.split('.');
  if (head.startsWith('@')) {
    const directive = head.slice(1);
    const coordinate = second === undefined ? directiveCoordinate(directive) : directiveCoordinate(directive, second);
    return { coordinate, usageKeys: [directiveCoordinate(directive)] };
  }
  if (third !== undefined && second !== undefined && !third.startsWith('@')) {
    return { coordinate: argumentCoordinate(head, second, third), usageKeys: [fieldCoordinate(head, second)] };
  }
  const coordinate = second === undefined || second.startsWith('@') ? head : fieldCoordinate(head, second);
  return { coordinate, usageKeys: [coordinate] };
}

function isRequiredArgument(schema: GraphQLSchema, type: string, field: string, arg: string): boolean {
  const owner = schema.getType(type);
  if (!owner || !('getFields' in owner)) return false;
  const def = owner.getFields()[field];
  const argument = def && 'args' in def ? def.args.find((a) => a.name === arg) : undefined;
  return argument !== undefined && isNonNullType(argument.type) && argument.defaultValue === undefined;
}

function isRequiredInputField(schema: GraphQLSchema, input: string, field: string): boolean {
  const owner = schema.getType(input);
  if (!owner || !('getFields' in owner)) return false;
  const def = owner.getFields()[field];
  return def !== undefined && 'defaultValue' in def && isNonNullType(def.type) && def.defaultValue === undefined;
}
