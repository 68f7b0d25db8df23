//! The access matrix, generated from the sample model's rules: for every role, entity,
//! operation (read, create, update of each member, delete) and object (inside and outside the
//! rule's constraint), the attempt goes through the HTTP API and its result must be exactly what
//! the rules say, computed independently in memory with the constraint evaluator. A refused
//! attempt must leave the object as it was.

use std::collections::BTreeMap;

use ferry_constraint::{Context, Graph, MemoryGraph};
use ferry_model::{
    AttributeType, DownloadBehaviour, Entity, EntityKind, EntityName, MemberRef, Model, Object,
    ObjectId, Slot, Value, samples,
};
use ferry_protocol::value;
use serde_json::{Value as Json, json};

use crate::harness::{SignedIn, TestServer, backends};

/// The objects as the test knows them, for in-memory evaluation.
type World = MemoryGraph;

/// A counter that makes written values unique (for unique attributes) and ids distinct.
struct Counter(u128);

impl Counter {
    fn next(&mut self) -> u128 {
        self.0 += 1;
        self.0
    }
}

fn new_id(counter: &mut Counter) -> ObjectId {
    ObjectId::from_parts(1_795_000_000_000, 1_000_000 + counter.next())
}

/// The file content every file object of the matrix carries (stored before it starts).
const CONTENT: &[u8] = b"a photo in the access matrix";

/// A value of the attribute that passes its validation rules.
fn valid_value(attribute: &ferry_model::Attribute, counter: &mut Counter) -> Value {
    let n = counter.next();
    match attribute.name.as_str() {
        "ContentHash" => return Value::String(crate::files::sha256(CONTENT)),
        "FileSize" => return Value::Integer(CONTENT.len() as i64),
        _ => {}
    }
    match &attribute.attribute_type {
        AttributeType::String { max_length } => {
            let text = match attribute.name.as_str() {
                "Code" => format!(
                    "{}{}",
                    (b'A' + (n % 26) as u8) as char,
                    (b'A' + (n / 26 % 26) as u8) as char
                ),
                "Email" => format!("u{n}@example.com"),
                _ => format!("v{n}"),
            };
            Value::String(
                text.chars().take(max_length.map_or(usize::MAX, |m| m as usize)).collect(),
            )
        }
        AttributeType::Integer if attribute.rules.unique => Value::Integer(10_000 + n as i64),
        AttributeType::Integer => match (&attribute.rules.min, &attribute.rules.max) {
            (_, Some(Value::Integer(max))) => Value::Integer(*max),
            (Some(Value::Integer(min)), None) => Value::Integer(*min + 1),
            _ => Value::Integer(7),
        },
        AttributeType::Decimal { scale } => {
            Value::Decimal(ferry_model::Decimal::parse("1", *scale).unwrap())
        }
        AttributeType::Boolean => Value::Boolean(n.is_multiple_of(2)),
        AttributeType::DateTime => {
            Value::DateTime(ferry_model::Timestamp::parse("2026-11-23T09:00:00Z").unwrap())
        }
        AttributeType::Enumeration { values } => {
            Value::Enumeration(values[1.min(values.len() - 1)].clone())
        }
        AttributeType::Binary => Value::Empty,
    }
}

fn members_json(entity: &Entity, values: &[(Slot, Value)]) -> Json {
    Json::Object(
        values
            .iter()
            .map(|(slot, v)| (entity.member_name(*slot).to_owned(), value::encode(v)))
            .collect(),
    )
}

fn decode_members(entity: &Entity, members: &Json) -> BTreeMap<String, Value> {
    members
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, json)| {
            let member = entity.member(name).unwrap();
            let attribute_type = match member {
                MemberRef::Attribute(i) => Some(&entity.attributes[i].attribute_type),
                MemberRef::Association(_) => None,
            };
            (name.clone(), value::decode(json, attribute_type).unwrap())
        })
        .collect()
}

struct Matrix<'a> {
    server: &'a TestServer,
    model: Model,
    constraints: ferry_constraint::ModelConstraints,
    world: World,
    counter: Counter,
    /// A user holding every role, who seeds the data and reads it back.
    root: SignedIn,
    attempts: usize,
    /// Attempts the rules allow and refuse, so the matrix is known to test both.
    allowed: usize,
    refused: usize,
}

impl Matrix<'_> {
    async fn upload_one(&mut self, who: &SignedIn, change: Json) -> Json {
        let upload_id = format!("m{}", self.counter.next());
        let (status, response) = self.server.upload(who, &upload_id, json!([change])).await;
        assert!(status.is_success(), "{response}");
        self.attempts += 1;
        response["outcomes"][0].clone()
    }

    /// The object's state on the server, every member, read through a no-op update by root.
    async fn server_state(&mut self, entity: &Entity, id: ObjectId) -> BTreeMap<String, Value> {
        let root = SignedIn {
            token: self.root.token.clone(),
            refresh: self.root.refresh.clone(),
            id: self.root.id,
        };
        let outcome = self.upload_one(&root, json!({ "entity": entity.name.to_string(), "id": id.to_string(), "kind": "update", "values": {} })).await;
        assert_eq!(outcome["outcome"], "applied", "{outcome}");
        decode_members(entity, &outcome["values"])
    }

    fn expected_state(&self, entity: &Entity, id: ObjectId) -> BTreeMap<String, Value> {
        let object = self.world.object(&entity.name, id).unwrap();
        (0..entity.member_count())
            .map(|s| (entity.member_name(Slot(s)).to_owned(), object.values[s].clone()))
            .collect()
    }

    /// Whether the rule of `role` on `entity` covers `object`, evaluated in memory.
    fn covers<'e>(
        &self,
        entity: &'e Entity,
        role: &str,
        user: ObjectId,
        object: &Object,
    ) -> Option<&'e ferry_model::AccessRule> {
        let rule = entity.access.iter().find(|r| r.role.as_str() == role)?;
        let context = Context {
            user: Some(user),
            roles: vec![role.to_owned()],
            now: self.server.clock.0.lock().unwrap().to_owned(),
            parameters: Default::default(),
        };
        match self.constraints.access.get(&(entity.name.clone(), rule.role.clone())) {
            Some(constraint) => {
                constraint.bind(&context).matches(object, &self.world).then_some(rule)
            }
            None => Some(rule),
        }
    }

    /// Values for a new object of `entity`: every required attribute, and references that place
    /// it inside the constraints of `user` (pointing at their own objects).
    fn new_values(
        &mut self,
        entity: &Entity,
        user: ObjectId,
        mine: &BTreeMap<EntityName, ObjectId>,
    ) -> Vec<(Slot, Value)> {
        let mut values = Vec::new();
        for (index, attribute) in entity.attributes.iter().enumerate() {
            // A file object names a stored content and its size, or neither.
            let content = matches!(attribute.name.as_str(), "ContentHash" | "FileSize")
                && entity.kind == EntityKind::File;
            if attribute.rules.required || attribute.rules.unique || content {
                values.push((Slot(index), valid_value(attribute, &mut self.counter)));
            }
        }
        for (index, association) in entity.associations.iter().enumerate() {
            let target = if association.target.as_str() == ferry_model::USER_ENTITY {
                Some(user)
            } else {
                mine.get(&association.target).copied()
            };
            if let Some(target) = target {
                values.push((entity.slot(MemberRef::Association(index)), Value::Reference(target)));
            }
        }
        values
    }

    /// Seeds one object of every entity for `owner`, in reference order, as root or else as the
    /// owner (root's rules do not reach every object, such as another technician's photos);
    /// an entity neither may create gets no object.
    async fn seed_for(&mut self, owner: &SignedIn) -> BTreeMap<EntityName, ObjectId> {
        let user = owner.id;
        let mut mine = BTreeMap::new();
        let model = self.model.clone();
        for entity in
            model.entities_in_reference_order().into_iter().filter(|e| e.kind != EntityKind::System)
        {
            let id = new_id(&mut self.counter);
            let values = self.new_values(entity, user, &mine);
            let change = json!({ "entity": entity.name.to_string(), "id": id.to_string(), "kind": "create", "values": members_json(entity, &values) });
            let root = SignedIn {
                token: self.root.token.clone(),
                refresh: self.root.refresh.clone(),
                id: self.root.id,
            };
            let mut outcome = self.upload_one(&root, change.clone()).await;
            if outcome["outcome"] != "applied" {
                outcome = self.upload_one(owner, change).await;
            }
            if outcome["outcome"] != "applied" {
                continue;
            }
            let mut object = Object { id, values: entity.default_values() };
            for (slot, value) in values {
                object.values[slot.0] = value;
            }
            self.world.objects.entry(entity.name.clone()).or_default().push(object);
            mine.insert(entity.name.clone(), id);
        }
        mine
    }
}

#[tokio::test]
async fn access_matrix_of_the_field_service_model() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let model = samples::field_service();
        let constraints = ferry_constraint::check_model(&model).unwrap();
        let roles: Vec<String> = model.roles().map(|r| r.name.to_string()).collect();
        let role_refs: Vec<&str> = roles.iter().map(String::as_str).collect();
        let root = server.user("root", &role_refs).await;
        let (status, _) = server.put_file(&root, &crate::files::sha256(CONTENT), CONTENT).await;
        assert_eq!(status, axum::http::StatusCode::OK);
        let mut matrix = Matrix {
            server: &server,
            model: model.clone(),
            constraints,
            world: World::default(),
            counter: Counter(0),
            root,
            attempts: 0,
            allowed: 0,
            refused: 0,
        };
        let outsider = server.user("olga", &["Technician"]).await;
        // A user names in a file object only a content they sent themselves.
        let hash = crate::files::sha256(CONTENT);
        assert_eq!(server.put_file(&outsider, &hash, CONTENT).await.0, axum::http::StatusCode::OK);
        let mut objects_of_others = matrix.seed_for(&outsider).await;

        for role in &roles {
            let user = server.user(&format!("user-{role}"), &[role.as_str()]).await;
            assert_eq!(server.put_file(&user, &hash, CONTENT).await.0, axum::http::StatusCode::OK);
            let mine = matrix.seed_for(&user).await;
            for entity in model.entities().filter(|e| e.kind != EntityKind::System) {
                let rule = entity.access.iter().find(|r| r.role.as_str() == role);

                // Read: exactly the covered objects under the download behaviour, with the rule's readable members.
                let downloaded = server.download_all(&user, entity.name.as_str(), None).await;
                let behaviour_downloads = matches!(
                    entity.download,
                    DownloadBehaviour::All | DownloadBehaviour::Constraint(_)
                );
                for object in &matrix.world.objects[&entity.name] {
                    let covered = matrix.covers(entity, role, user.id, object).is_some();
                    let in_download = match &entity.download {
                        DownloadBehaviour::Constraint(_) => {
                            let context = Context {
                                user: Some(user.id),
                                roles: vec![role.clone()],
                                now: *server.clock.0.lock().unwrap(),
                                parameters: Default::default(),
                            };
                            matrix.constraints.download[&entity.name]
                                .bind(&context)
                                .matches(object, &matrix.world)
                        }
                        _ => true,
                    };
                    let expected = covered && behaviour_downloads && in_download;
                    let got = downloaded.objects.get(&object.id.to_string());
                    assert_eq!(
                        got.is_some(),
                        expected,
                        "{role} reading {} {}",
                        entity.name,
                        object.id
                    );
                    if let (Some(got), Some(rule)) = (got, rule) {
                        let names: Vec<String> =
                            got["values"].as_object().unwrap().keys().cloned().collect();
                        let expected_names: std::collections::BTreeSet<String> =
                            rule.read.iter().map(|s| entity.member_name(*s).to_owned()).collect();
                        assert_eq!(
                            names.into_iter().collect::<std::collections::BTreeSet<_>>(),
                            expected_names,
                            "{role} members of {}",
                            entity.name
                        );
                    }
                }

                // Update each member of an object inside and one outside the rule's constraint.
                for target in [mine.get(&entity.name), objects_of_others.get(&entity.name)]
                    .into_iter()
                    .flatten()
                    .copied()
                {
                    for slot in (0..entity.member_count()).map(Slot) {
                        let new_value = match entity.member_at(slot) {
                            MemberRef::Attribute(index) => {
                                valid_value(&entity.attributes[index], &mut matrix.counter)
                            }
                            MemberRef::Association(index) => {
                                let association = &entity.associations[index];
                                if association.target.as_str() == ferry_model::USER_ENTITY {
                                    Value::Reference(user.id)
                                } else {
                                    mine.get(&association.target)
                                        .map_or(Value::Empty, |id| Value::Reference(*id))
                                }
                            }
                        };
                        if new_value.is_empty() {
                            continue;
                        }
                        let object = matrix.world.object(&entity.name, target).unwrap().clone();
                        let allowed = matrix
                            .covers(entity, role, user.id, &object)
                            .is_some_and(|rule| rule.write.contains(&slot));
                        let change = json!({ "entity": entity.name.to_string(), "id": target.to_string(), "kind": "update", "values": members_json(entity, &[(slot, new_value.clone())]) });
                        let outcome = matrix.upload_one(&user, change).await;
                        matrix.allowed += usize::from(allowed);
                        matrix.refused += usize::from(!allowed);
                        if allowed {
                            assert_eq!(
                                outcome["outcome"],
                                "applied",
                                "{role} writing {}.{}: {outcome}",
                                entity.name,
                                entity.member_name(slot)
                            );
                            matrix.world.get_mut(&entity.name, target).unwrap().values[slot.0] =
                                new_value;
                        } else {
                            assert_eq!(
                                outcome["outcome"],
                                "failed",
                                "{role} writing {}.{}: {outcome}",
                                entity.name,
                                entity.member_name(slot)
                            );
                            assert!(
                                outcome["reason"].as_str().unwrap().starts_with("access: "),
                                "{outcome}"
                            );
                        }
                        let expected = matrix.expected_state(entity, target);
                        assert_eq!(
                            matrix.server_state(entity, target).await,
                            expected,
                            "{role} after writing {}.{}",
                            entity.name,
                            entity.member_name(slot)
                        );
                    }
                }

                // Create one inside the user's reach.
                let id = new_id(&mut matrix.counter);
                let values = matrix.new_values(entity, user.id, &mine);
                let change = json!({ "entity": entity.name.to_string(), "id": id.to_string(), "kind": "create", "values": members_json(entity, &values) });
                let outcome = matrix.upload_one(&user, change).await;
                let mut object = Object { id, values: entity.default_values() };
                for (slot, value) in &values {
                    object.values[slot.0] = value.clone();
                }
                let may_write_all = rule
                    .is_some_and(|r| r.create && values.iter().all(|(s, _)| r.write.contains(s)));
                let inside = matrix.covers(entity, role, user.id, &object).is_some();
                if may_write_all && inside {
                    assert_eq!(
                        outcome["outcome"], "applied",
                        "{role} creating {}: {outcome}",
                        entity.name
                    );
                    matrix.world.objects.get_mut(&entity.name).unwrap().push(object);
                } else {
                    assert_eq!(
                        outcome["outcome"], "failed",
                        "{role} creating {}: {outcome}",
                        entity.name
                    );
                    assert!(
                        outcome["reason"].as_str().unwrap().starts_with("access: "),
                        "{outcome}"
                    );
                }

                // Delete the other user's object (inside the rule only where it has no constraint).
                let Some(&target) = objects_of_others.get(&entity.name) else { continue };
                let object = matrix.world.object(&entity.name, target).unwrap().clone();
                let allowed =
                    matrix.covers(entity, role, user.id, &object).is_some_and(|rule| rule.delete);
                let outcome = matrix.upload_one(&user, json!({ "entity": entity.name.to_string(), "id": target.to_string(), "kind": "delete" })).await;
                if allowed {
                    assert_eq!(
                        outcome["outcome"], "deleted",
                        "{role} deleting {}: {outcome}",
                        entity.name
                    );
                    matrix.world.objects.get_mut(&entity.name).unwrap().retain(|o| o.id != target);
                    // Later roles need an object of others again: seed a fresh one.
                    objects_of_others = matrix.seed_for(&outsider).await;
                } else {
                    assert_eq!(
                        outcome["outcome"], "failed",
                        "{role} deleting {}: {outcome}",
                        entity.name
                    );
                    let expected = matrix.expected_state(entity, target);
                    assert_eq!(matrix.server_state(entity, target).await, expected);
                }
            }
        }
        assert!(matrix.attempts > 500, "only {} attempts", matrix.attempts);
        assert!(
            matrix.allowed > 50 && matrix.refused > 50,
            "allowed {}, refused {}",
            matrix.allowed,
            matrix.refused
        );
        println!(
            "access matrix: {} requests, {} member writes allowed, {} refused",
            matrix.attempts, matrix.allowed, matrix.refused
        );
    }
}
